//! Host facts, and plans applied and reverted through the real entry points
//! (`audit::prepare`, `plan::plan`, `plan::apply`, `plan::revert` with the
//! `System` access) against fake `/proc` and `/sys` trees built in temporary
//! directories. Nothing here writes
//! outside its own temporary directory, which a guard removes on drop (also
//! when a test fails).

use std::collections::BTreeMap;
use std::fs;
use std::os::unix::fs::{PermissionsExt as _, symlink};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

use hftnet_tune::access::System;
use hftnet_tune::cpuset::{
    CpusetMount, HostOp, IsolationOptions, PlanError, V1_HOUSEKEEPING, detect_cpuset,
    plan_cpu_isolation,
};
use hftnet_tune::facts::{HostFacts, ProcessEnv, discover_irqs};
use hftnet_tune::plan::{
    Access, AccessError, ApplyReport, HostId, Plan, SNAPSHOT_FORMAT, Snapshot, Target, apply, plan,
    revert,
};
use hftnet_tune::profile::Profile;
use hftnet_tune::root::{Root, RootError};
use hftnet_tune::scope::DirId;
use hftnet_tune::services::FakeServices;

// ---------------------------------------------------------------------------
// The fake tree
// ---------------------------------------------------------------------------

/// A temporary directory removed on drop.
struct FakeTree {
    dir: PathBuf,
}

impl FakeTree {
    fn new(tag: &str) -> FakeTree {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "hftnet-fake-host-{}-{tag}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("create temp dir");
        FakeTree { dir }
    }

    fn root(&self) -> Root {
        Root::at(&self.dir)
    }

    /// A file as the kernel shows it: content plus a newline.
    fn file(&self, rel: &str, content: &str) {
        let p = self.dir.join(rel);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        fs::write(&p, format!("{content}\n")).expect("write fake file");
    }

    fn dir(&self, rel: &str) {
        fs::create_dir_all(self.dir.join(rel)).expect("mkdir");
    }

    fn link(&self, rel: &str, target: &str) {
        let p = self.dir.join(rel);
        fs::create_dir_all(p.parent().expect("parent")).expect("mkdir");
        symlink(target, p).expect("symlink");
    }

    fn get(&self, rel: &str) -> String {
        fs::read_to_string(self.dir.join(rel))
            .unwrap_or_else(|e| panic!("{rel}: {e}"))
            .trim()
            .to_owned()
    }

    /// Every file (trimmed content), directory and link under the tree.
    fn snapshot(&self) -> BTreeMap<String, String> {
        fn walk(base: &Path, dir: &Path, out: &mut BTreeMap<String, String>) {
            for e in fs::read_dir(dir).expect("read_dir") {
                let e = e.expect("entry");
                let p = e.path();
                let rel = p.strip_prefix(base).expect("prefix").display().to_string();
                let ft = e.file_type().expect("file type");
                if ft.is_symlink() {
                    let t = fs::read_link(&p).expect("read_link");
                    out.insert(rel, format!("-> {}", t.display()));
                } else if ft.is_dir() {
                    out.insert(rel, "<dir>".into());
                    walk(base, &p, out);
                } else {
                    let c = fs::read_to_string(&p).expect("read");
                    out.insert(rel, c.trim().to_owned());
                }
            }
        }
        let mut out = BTreeMap::new();
        walk(&self.dir, &self.dir, &mut out);
        out
    }
}

impl Drop for FakeTree {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.dir);
    }
}

/// IRQs of the fake host: number, `/proc/interrupts` name, affinity,
/// effective affinity.
const IRQS: &[(u32, &str, &str, &str)] = &[
    (0, "IO-APIC   2-edge      timer", "0-3", "0"),
    (
        36,
        "PCI-MSIX-0000:00:02.0   1-edge      virtio1-req.0",
        "0-3",
        "1",
    ),
    (
        37,
        "PCI-MSIX-0000:00:03.0   0-edge      virtio2-config",
        "0-3",
        "0",
    ),
    (
        38,
        "PCI-MSIX-0000:00:03.0   1-edge      virtio2-input.0",
        "1",
        "1",
    ),
    (
        39,
        "PCI-MSIX-0000:00:03.0   2-edge      virtio2-output.0",
        "0",
        "0",
    ),
    (
        120,
        "IR-PCI-MSIX-0000:3b:00.0    0-edge      ens1f0",
        "0-3",
        "0",
    ),
    (
        121,
        "IR-PCI-MSIX-0000:3b:00.0    1-edge      ens1f0-TxRx-0",
        "0-3",
        "0",
    ),
    (
        122,
        "IR-PCI-MSIX-0000:3b:00.0    2-edge      ens1f0-TxRx-1",
        "0-3",
        "1",
    ),
    (
        123,
        "IR-PCI-MSIX-0000:3b:00.0    3-edge      ens1f0-TxRx-2",
        "0-3",
        "2",
    ),
    (
        124,
        "IR-PCI-MSIX-0000:3b:00.0    4-edge      ens1f0-TxRx-3",
        "0-3",
        "3",
    ),
    (125, "IR-PCI-MSIX    5-edge      qdma-5", "0-3", "1"),
    (
        130,
        "IR-PCI-MSIX-0000:3b:00.1    0-edge      ens1f1-TxRx-0",
        "2",
        "2",
    ),
];

/// cpuidle states: index, name, exit latency (µs), residency (µs).
const CSTATES: &[(usize, &str, u64, u64)] = &[
    (0, "POLL", 0, 0),
    (1, "C1", 2, 2),
    (2, "C1E", 10, 20),
    (3, "C6", 133, 600),
];

const SYSCTLS: &[(&str, &str)] = &[
    ("kernel/osrelease", "6.8.0-45-generic"),
    ("kernel/sched_rt_runtime_us", "950000"),
    ("kernel/sched_rt_period_us", "1000000"),
    ("kernel/numa_balancing", "1"),
    ("kernel/timer_migration", "1"),
    ("kernel/watchdog", "1"),
    ("kernel/nmi_watchdog", "0"),
    ("vm/swappiness", "60"),
    ("vm/nr_hugepages", "512"),
    ("net/core/busy_poll", "0"),
    ("net/core/busy_read", "0"),
    ("net/core/rmem_max", "212992"),
    ("net/core/wmem_max", "212992"),
    ("net/core/rmem_default", "212992"),
    ("net/core/wmem_default", "212992"),
    ("net/core/netdev_max_backlog", "1000"),
    ("net/core/netdev_budget", "300"),
    ("net/core/netdev_budget_usecs", "2000"),
    ("net/core/somaxconn", "4096"),
    ("net/ipv4/tcp_rmem", "4096\t131072\t6291456"),
    ("net/ipv4/tcp_wmem", "4096\t16384\t4194304"),
    ("net/ipv4/udp_rmem_min", "4096"),
    ("net/ipv4/tcp_sack", "1"),
    ("net/ipv4/tcp_timestamps", "1"),
    ("net/ipv4/tcp_fastopen", "1"),
    ("net/ipv4/tcp_slow_start_after_idle", "1"),
    ("net/ipv4/tcp_autocorking", "1"),
    ("net/ipv4/tcp_notsent_lowat", "4294967295"),
];

/// A 4-CPU host with SMT, cpufreq, cpuidle, two NIC ports, a virtio NIC, a
/// veth, irqbalance running; isolcpus=2-3 nohz_full=2-3 at boot.
fn realistic(tag: &str) -> FakeTree {
    let t = FakeTree::new(tag);
    t.file(
        "proc/cmdline",
        "BOOT_IMAGE=/vmlinuz-6.8.0-45-generic root=/dev/sda1 ro quiet isolcpus=2-3 nohz_full=2-3 rcu_nocbs=2-3 skew_tick=1",
    );
    for (name, value) in SYSCTLS {
        t.file(&format!("proc/sys/{name}"), value);
    }
    t.file(
        "sys/devices/system/clocksource/clocksource0/current_clocksource",
        "tsc",
    );
    let cpu = "sys/devices/system/cpu";
    t.file(&format!("{cpu}/online"), "0-3");
    t.file(&format!("{cpu}/possible"), "0-3");
    t.file(&format!("{cpu}/isolated"), "2-3");
    t.file(&format!("{cpu}/nohz_full"), "2-3");
    t.file(&format!("{cpu}/smt/active"), "1");
    t.file(&format!("{cpu}/smt/control"), "on");
    t.file(&format!("{cpu}/cpuidle/current_driver"), "intel_idle");
    t.file(&format!("{cpu}/cpuidle/current_governor"), "menu");
    for n in 0..4usize {
        let d = format!("{cpu}/cpu{n}");
        if n > 0 {
            t.file(&format!("{d}/online"), "1");
        }
        t.file(&format!("{d}/topology/core_id"), &(n % 2).to_string());
        t.file(&format!("{d}/topology/physical_package_id"), "0");
        t.file(
            &format!("{d}/topology/thread_siblings_list"),
            if n % 2 == 0 { "0,2" } else { "1,3" },
        );
        t.dir(&format!("{d}/node0"));
        t.file(&format!("{d}/cpufreq/scaling_governor"), "powersave");
        t.file(
            &format!("{d}/cpufreq/scaling_available_governors"),
            "performance powersave",
        );
        t.file(&format!("{d}/cpufreq/scaling_driver"), "intel_pstate");
        t.file(&format!("{d}/cpufreq/scaling_cur_freq"), "1200000");
        t.file(&format!("{d}/cpufreq/scaling_min_freq"), "800000");
        t.file(&format!("{d}/cpufreq/scaling_max_freq"), "3500000");
        for (k, name, lat, res) in CSTATES {
            let s = format!("{d}/cpuidle/state{k}");
            t.file(&format!("{s}/name"), name);
            t.file(&format!("{s}/latency"), &lat.to_string());
            t.file(&format!("{s}/residency"), &res.to_string());
            // cpu3's C6 is already disabled.
            let disabled = n == 3 && *k == 3;
            t.file(&format!("{s}/disable"), if disabled { "1" } else { "0" });
        }
    }
    t.file(
        "sys/kernel/mm/transparent_hugepage/enabled",
        "[always] madvise never",
    );
    t.file(
        "sys/kernel/mm/transparent_hugepage/defrag",
        "always defer defer+madvise [madvise] never",
    );
    t.file(
        "proc/meminfo",
        "MemTotal:       16315412 kB\nHugePages_Total:     512\nHugePages_Free:      500\nHugePages_Rsvd:        3\nHugePages_Surp:        0\nHugepagesize:       2048 kB",
    );
    t.file(
        "sys/kernel/mm/hugepages/hugepages-2048kB/nr_hugepages",
        "512",
    );
    t.file(
        "sys/kernel/mm/hugepages/hugepages-2048kB/free_hugepages",
        "500",
    );
    t.file(
        "sys/kernel/mm/hugepages/hugepages-1048576kB/nr_hugepages",
        "0",
    );
    t.file(
        "sys/kernel/mm/hugepages/hugepages-1048576kB/free_hugepages",
        "0",
    );

    // /proc/interrupts and /proc/irq.
    let mut text = String::from("            CPU0       CPU1       CPU2       CPU3\n");
    for (irq, name, aff, eff) in IRQS {
        text.push_str(&format!(
            "{irq:>4}: {:>10} {:>10} {:>10} {:>10}   {name}\n",
            irq * 10,
            1,
            0,
            0
        ));
        t.file(&format!("proc/irq/{irq}/smp_affinity_list"), aff);
        t.file(&format!("proc/irq/{irq}/effective_affinity_list"), eff);
    }
    text.push_str(" NMI:          0          0          0          0   Non-maskable interrupts\n");
    text.push_str(" LOC:     768184    1002414     100000     100000   Local timer interrupts\n");
    t.file("proc/interrupts", text.trim_end());
    t.file("proc/irq/default_smp_affinity", "f");
    t.file("sys/devices/virtual/workqueue/cpumask", "f");

    // A two-port PCI NIC, laid out with relative links as sysfs does.
    let pci = "sys/devices/pci0000:3a/0000:3a:00.0";
    for (f, name) in [("0", "ens1f0"), ("1", "ens1f1")] {
        let dev = format!("{pci}/0000:3b:00.{f}");
        t.dir(&format!("{dev}/net/{name}"));
        t.link(
            &format!("sys/class/net/{name}"),
            &format!("../../devices/pci0000:3a/0000:3a:00.0/0000:3b:00.{f}/net/{name}"),
        );
        t.link(
            &format!("{dev}/net/{name}/device"),
            &format!("../../../0000:3b:00.{f}"),
        );
        t.link(
            &format!("{dev}/driver"),
            "../../../../bus/pci/drivers/ixgbe",
        );
    }
    t.dir("sys/bus/pci/drivers/ixgbe");
    for irq in 120..=125 {
        t.file(&format!("{pci}/0000:3b:00.0/msi_irqs/{irq}"), "msix");
    }
    t.file(&format!("{pci}/0000:3b:00.1/msi_irqs/130"), "msix");
    // A virtio-net device: the MSI IRQs belong to the PCI parent.
    let vdev = "sys/devices/pci0000:00/0000:00:03.0";
    t.dir(&format!("{vdev}/virtio2/net/eth0"));
    t.link(
        "sys/class/net/eth0",
        "../../devices/pci0000:00/0000:00:03.0/virtio2/net/eth0",
    );
    t.link(
        &format!("{vdev}/virtio2/net/eth0/device"),
        "../../../virtio2",
    );
    t.link(
        &format!("{vdev}/virtio2/driver"),
        "../../../../bus/virtio/drivers/virtio_net",
    );
    t.dir("sys/bus/virtio/drivers/virtio_net");
    for irq in 37..=39 {
        t.file(&format!("{vdev}/msi_irqs/{irq}"), "msix");
    }
    // A veth: no device.
    t.dir("sys/devices/virtual/net/veth0");
    t.link("sys/class/net/veth0", "../../devices/virtual/net/veth0");

    // Processes: two kernel threads, systemd, irqbalance, sshd.
    for (pid, comm, flags) in [
        (1, "systemd", 4_194_560u64),
        (2, "kthreadd", 2_129_984),
        (52, "ksoftirqd/2", 69_238_848),
        (812, "irqbalance", 4_194_560),
        (900, "sshd", 4_194_560),
    ] {
        t.file(&format!("proc/{pid}/comm"), comm);
        t.file(
            &format!("proc/{pid}/stat"),
            &format!(
                "{pid} ({comm}) S 1 {pid} {pid} 0 -1 {flags} 100 0 0 0 0 0 0 0 20 0 1 0 {}",
                1000 + pid
            ),
        );
        t.file(&format!("proc/{pid}/cpuset"), "/");
    }
    t.file(
        "proc/modules",
        "ixgbe 401408 0 - Live 0x0000000000000000\nmdio 16384 1 ixgbe, Live 0x0000000000000000",
    );
    t
}

/// Adds a cgroup v1 cpuset hierarchy (like this VM's, plus two cpusets).
fn add_cgroup_v1(t: &FakeTree) {
    t.file(
        "proc/mounts",
        "sysfs /sys sysfs rw,relatime 0 0\n\
         cgroup /sys/fs/cgroup/cpuset cgroup rw,relatime,cpuset 0 0\n\
         cgroup /sys/fs/cgroup/memory cgroup rw,relatime,memory 0 0\n\
         cgroup2 /sys/fs/cgroup/unified cgroup2 rw,relatime 0 0",
    );
    t.file("sys/fs/cgroup/unified/cgroup.controllers", "hugetlb");
    let d = "sys/fs/cgroup/cpuset";
    t.file(&format!("{d}/cpuset.cpus"), "0-3");
    t.file(&format!("{d}/cpuset.effective_cpus"), "0-3");
    t.file(&format!("{d}/cpuset.mems"), "0");
    t.file(&format!("{d}/cpuset.cpu_exclusive"), "1");
    t.file(&format!("{d}/cgroup.procs"), "1\n2\n52\n812\n900");
    t.file(&format!("{d}/tasks"), "1\n2\n52\n812\n900");
    for (cg, cpus) in [
        ("docker", "0-1"),
        ("machine", "0-3"),
        ("machine/vm1", "1-2"),
    ] {
        t.file(&format!("{d}/{cg}/cpuset.cpus"), cpus);
        t.file(&format!("{d}/{cg}/cpuset.mems"), "0");
        t.file(&format!("{d}/{cg}/cpuset.cpu_exclusive"), "0");
        t.file(&format!("{d}/{cg}/cgroup.procs"), "");
    }
}

/// Adds a cgroup v2 hierarchy with `cpuset` available but not enabled for
/// the children (their `cpuset.cpus` files are created empty, as the kernel
/// shows them once it is enabled).
fn add_cgroup_v2(t: &FakeTree) {
    t.file(
        "proc/mounts",
        "sysfs /sys sysfs rw,relatime 0 0\ncgroup2 /sys/fs/cgroup cgroup2 rw,nosuid,nodev,noexec,relatime 0 0",
    );
    let d = "sys/fs/cgroup";
    t.file(
        &format!("{d}/cgroup.controllers"),
        "cpuset cpu io memory hugetlb pids",
    );
    t.file(&format!("{d}/cgroup.subtree_control"), "cpu io memory pids");
    t.file(&format!("{d}/cpuset.cpus.effective"), "0-3");
    t.file(&format!("{d}/cpuset.mems.effective"), "0");
    t.file(&format!("{d}/cgroup.procs"), "2\n52");
    for cg in ["init.scope", "system.slice", "user.slice"] {
        t.file(&format!("{d}/{cg}/cpuset.cpus"), "");
        t.file(&format!("{d}/{cg}/cgroup.procs"), "");
    }
}

fn env(path: &str, preload: Option<&str>) -> ProcessEnv {
    ProcessEnv {
        path: Some(path.into()),
        ld_preload: preload.map(str::to_owned),
    }
}

// ---------------------------------------------------------------------------
// Reading
// ---------------------------------------------------------------------------

#[test]
fn facts_are_read_exactly() {
    let t = realistic("facts");
    add_cgroup_v1(&t);
    let f = HostFacts::read_with_env(
        &t.root(),
        &["ens1f0", "eth0", "veth0", "nosuch0"],
        &env("/usr/local/bin:/usr/bin", None),
    );
    assert_eq!(f.problems, vec![]);
    assert_eq!(f.kernel_release.as_deref(), Some("6.8.0-45-generic"));
    assert_eq!(f.clocksource.as_deref(), Some("tsc"));

    let iso = f.cmdline.isolcpus.as_ref().expect("isolcpus");
    assert_eq!(
        (iso.value.as_str(), iso.cpus.clone()),
        ("2-3", Some(vec![2, 3]))
    );
    assert_eq!(
        f.cmdline.nohz_full.as_ref().and_then(|p| p.cpus.clone()),
        Some(vec![2, 3])
    );
    assert_eq!(
        f.cmdline.rcu_nocbs.as_ref().and_then(|p| p.cpus.clone()),
        Some(vec![2, 3])
    );
    assert_eq!(f.cmdline.irqaffinity, None);
    assert_eq!(
        f.cmdline.latency_params.keys().collect::<Vec<_>>(),
        ["isolcpus", "nohz_full", "rcu_nocbs", "skew_tick"]
    );

    let c = &f.cpus;
    assert_eq!(c.online, Some(vec![0, 1, 2, 3]));
    assert_eq!(c.isolated, Some(vec![2, 3]));
    assert_eq!(c.nohz_full, Some(vec![2, 3]));
    assert_eq!(
        (c.smt_active, c.smt_control.as_deref()),
        (Some(true), Some("on"))
    );
    assert_eq!(c.cpuidle_driver.as_deref(), Some("intel_idle"));
    assert_eq!(c.cpuidle_governor.as_deref(), Some("menu"));
    assert_eq!(c.per_cpu.len(), 4);
    let c0 = &c.per_cpu[0];
    assert_eq!(
        (c0.cpu, c0.online, c0.isolated, c0.nohz_full, c0.rcu_nocb),
        (0, None, false, false, false)
    );
    let c2 = &c.per_cpu[2];
    assert_eq!(
        (c2.cpu, c2.online, c2.isolated, c2.nohz_full, c2.rcu_nocb),
        (2, Some(true), true, true, true)
    );
    assert_eq!(
        (c2.core_id, c2.package_id, c2.node),
        (Some(0), Some(0), Some(0))
    );
    assert_eq!(c2.thread_siblings.as_deref(), Some("0,2"));
    assert_eq!(c2.governor.as_deref(), Some("powersave"));
    assert_eq!(
        c2.available_governors,
        Some(vec!["performance".to_owned(), "powersave".to_owned()])
    );
    assert_eq!(c2.scaling_driver.as_deref(), Some("intel_pstate"));
    assert_eq!(
        (c2.cur_khz, c2.min_khz, c2.max_khz),
        (Some(1_200_000), Some(800_000), Some(3_500_000))
    );
    let states: Vec<_> = c.per_cpu[3]
        .cstates
        .iter()
        .map(|s| {
            (
                s.index,
                s.name.clone().unwrap_or_default(),
                s.latency_us,
                s.residency_us,
                s.disabled,
            )
        })
        .collect();
    assert_eq!(
        states,
        vec![
            (0, "POLL".into(), Some(0), Some(0), Some(false)),
            (1, "C1".into(), Some(2), Some(2), Some(false)),
            (2, "C1E".into(), Some(10), Some(20), Some(false)),
            (3, "C6".into(), Some(133), Some(600), Some(true)),
        ]
    );

    assert_eq!(f.thp.enabled.as_deref(), Some("always"));
    assert_eq!(f.thp.defrag.as_deref(), Some("madvise"));
    let h = &f.hugepages;
    assert_eq!(
        (h.size_kb, h.total, h.free, h.reserved),
        (Some(2048), Some(512), Some(500), Some(3))
    );
    let sizes: Vec<_> = h
        .per_size
        .iter()
        .map(|s| (s.size_kb, s.nr, s.free))
        .collect();
    assert_eq!(
        sizes,
        vec![(2048, Some(512), Some(500)), (1_048_576, Some(0), Some(0))]
    );

    let s = |n: &str| f.sysctls.get(n).cloned().flatten();
    assert_eq!(s("kernel.sched_rt_runtime_us").as_deref(), Some("950000"));
    assert_eq!(s("kernel.numa_balancing").as_deref(), Some("1"));
    assert_eq!(s("kernel.timer_migration").as_deref(), Some("1"));
    assert_eq!(s("kernel.watchdog").as_deref(), Some("1"));
    assert_eq!(s("kernel.nmi_watchdog").as_deref(), Some("0"));
    assert_eq!(s("vm.swappiness").as_deref(), Some("60"));
    assert_eq!(s("vm.nr_hugepages").as_deref(), Some("512"));
    assert_eq!(
        s("net.ipv4.tcp_rmem").as_deref(),
        Some("4096 131072 6291456")
    );
    assert_eq!(s("net.core.somaxconn").as_deref(), Some("4096"));
    // Listed, not present on this kernel: None, not an error.
    assert!(f.sysctls.contains_key("net.ipv4.tcp_low_latency"));
    assert_eq!(s("net.ipv4.tcp_low_latency"), None);
    assert_eq!(f.default_irq_affinity.as_deref(), Some("f"));

    let names: Vec<_> = f
        .interfaces
        .iter()
        .map(|i| (i.name.as_str(), i.present))
        .collect();
    assert_eq!(
        names,
        [
            ("ens1f0", true),
            ("eth0", true),
            ("veth0", true),
            ("nosuch0", false)
        ]
    );
    let ens = &f.interfaces[0];
    assert_eq!(
        ens.device.as_deref(),
        Some("sys/devices/pci0000:3a/0000:3a:00.0/0000:3b:00.0")
    );
    assert_eq!(ens.driver.as_deref(), Some("ixgbe"));
    let irqs: Vec<_> = ens
        .irqs
        .iter()
        .map(|i| {
            (
                i.irq,
                i.by_name,
                i.by_msi,
                i.affinity.clone().unwrap_or_default(),
                i.effective_affinity.clone().unwrap_or_default(),
            )
        })
        .collect();
    assert_eq!(
        irqs,
        vec![
            (120, true, true, "0-3".into(), "0".into()),
            (121, true, true, "0-3".into(), "0".into()),
            (122, true, true, "0-3".into(), "1".into()),
            (123, true, true, "0-3".into(), "2".into()),
            (124, true, true, "0-3".into(), "3".into()),
            (125, false, true, "0-3".into(), "1".into()),
        ]
    );
    assert_eq!(
        ens.irqs[1].name.as_deref(),
        Some("IR-PCI-MSIX-0000:3b:00.0 1-edge ens1f0-TxRx-0")
    );
    assert_eq!(ens.irqs[1].counts, vec![1210, 1, 0, 0]);
    let eth0 = &f.interfaces[1];
    assert_eq!(
        eth0.device.as_deref(),
        Some("sys/devices/pci0000:00/0000:00:03.0/virtio2")
    );
    assert_eq!(eth0.driver.as_deref(), Some("virtio_net"));
    let v: Vec<_> = eth0
        .irqs
        .iter()
        .map(|i| (i.irq, i.by_name, i.by_msi))
        .collect();
    assert_eq!(
        v,
        vec![(37, true, true), (38, true, true), (39, true, true)]
    );
    assert_eq!(
        (f.interfaces[2].device.clone(), f.interfaces[2].irqs.len()),
        (None, 0)
    );
    assert_eq!(f.interfaces[3].irqs.len(), 0);

    assert!(f.irqbalance.running);
    assert_eq!(f.irqbalance.pids, vec![812]);
    assert!(!f.bypass.onload && !f.bypass.vma && !f.bypass.xlio);
    assert_eq!(f.bypass.modules, Vec::<String>::new());
    assert_eq!(
        f.cpuset,
        Some(CpusetMount::V1 {
            dir: "sys/fs/cgroup/cpuset".into()
        })
    );

    let json = serde_json::to_value(&f).expect("serialize");
    assert_eq!(
        json["sysctls"]["net.ipv4.tcp_low_latency"],
        serde_json::Value::Null
    );
    assert_eq!(json["thp"]["enabled"], "always");
    assert_eq!(json["cpuset"]["version"], "v1");
}

#[test]
fn an_empty_host_reads_as_absent() {
    let t = FakeTree::new("empty");
    let f = HostFacts::read_with_env(&t.root(), &["eth0"], &env("/usr/bin", None));
    assert_eq!(f.problems, vec![]);
    assert_eq!(f.kernel_release, None);
    assert_eq!(f.cmdline.raw, None);
    assert_eq!(f.cpus.per_cpu.len(), 0);
    assert_eq!(f.thp.enabled, None);
    assert!(f.sysctls.values().all(Option::is_none));
    assert!(!f.interfaces[0].present);
    assert!(!f.irqbalance.running);
    assert_eq!(f.cpuset, None);
}

#[test]
fn irq_discovery_by_name_and_msi() {
    let t = realistic("irqs");
    let root = t.root();
    let ids = |iface: &str| -> Vec<u32> {
        discover_irqs(&root, iface)
            .expect("discover")
            .iter()
            .map(|i| i.irq)
            .collect()
    };
    assert_eq!(ids("ens1f0"), [120, 121, 122, 123, 124, 125]);
    assert_eq!(ids("ens1f1"), [130]);
    assert_eq!(ids("eth0"), [37, 38, 39]);
    assert_eq!(ids("veth0"), Vec::<u32>::new());
    assert_eq!(ids("eth"), Vec::<u32>::new());
}

#[test]
fn onload_vma_xlio_detection() {
    let t = realistic("bypass");
    t.file("usr/bin/onload", "#!/bin/sh");
    fs::set_permissions(
        t.dir.join("usr/bin/onload"),
        fs::Permissions::from_mode(0o755),
    )
    .expect("chmod");
    t.file("opt/bin/onload", "not executable");
    t.file(
        "proc/modules",
        "sfc 700416 1 - Live 0x0\nonload 1105920 2 - Live 0x0\nsfc_char 86016 1 onload, Live 0x0\nsfc_resource 180224 2 onload,sfc_char, Live 0x0",
    );
    t.file("etc/ld.so.preload", "/usr/lib64/libonload.so");
    let root = t.root();
    let f = HostFacts::read_with_env(
        &root,
        &[],
        &env(
            "relative/bin:/opt/bin:/usr/bin",
            Some("libvma.so:/opt/xlio/lib/libxlio.so"),
        ),
    );
    let b = &f.bypass;
    assert_eq!(b.onload_binary.as_deref(), Some("/usr/bin/onload"));
    assert_eq!(b.modules, ["onload", "sfc_char", "sfc_resource"]);
    let p: Vec<_> = b
        .preloads
        .iter()
        .map(|p| (p.library.as_str(), p.stack.as_str(), p.from.as_str()))
        .collect();
    assert_eq!(
        p,
        [
            ("libvma.so", "vma", "LD_PRELOAD"),
            ("/opt/xlio/lib/libxlio.so", "xlio", "LD_PRELOAD"),
            ("/usr/lib64/libonload.so", "onload", "/etc/ld.so.preload"),
        ]
    );
    assert!(b.onload && b.vma && b.xlio);

    // Not in PATH, not loaded, not preloaded: absent.
    let t2 = realistic("bypass-none");
    t2.file("opt/bin/onload", "not executable");
    let f2 = HostFacts::read_with_env(&t2.root(), &[], &env("/opt/bin", Some("libfoo.so")));
    assert_eq!(f2.bypass.onload_binary, None);
    assert!(!f2.bypass.onload && f2.bypass.preloads.is_empty());
}

#[test]
fn cpuset_mount_detection() {
    let t = FakeTree::new("detect");
    let root = t.root();
    assert_eq!(detect_cpuset(&root).expect("detect"), None);
    add_cgroup_v1(&t);
    assert_eq!(
        detect_cpuset(&root).expect("detect"),
        Some(CpusetMount::V1 {
            dir: "sys/fs/cgroup/cpuset".into()
        })
    );
    let t2 = FakeTree::new("detect2");
    add_cgroup_v2(&t2);
    assert_eq!(
        detect_cpuset(&t2.root()).expect("detect"),
        Some(CpusetMount::V2 {
            dir: "sys/fs/cgroup".into()
        })
    );
    // cgroup2 mounted but cpuset bound elsewhere: none.
    t2.file("sys/fs/cgroup/cgroup.controllers", "cpu io memory pids");
    assert_eq!(detect_cpuset(&t2.root()).expect("detect"), None);
}

// ---------------------------------------------------------------------------
// Writing: (path, old, new) and round trips
// ---------------------------------------------------------------------------

#[test]
fn writes_never_leave_the_root() {
    let t = realistic("escape");
    let outside = FakeTree::new("outside");
    outside.file("swappiness", "60");
    fs::remove_dir_all(t.dir.join("proc/sys/vm")).expect("rm");
    symlink(&outside.dir, t.dir.join("proc/sys/vm")).expect("symlink");
    let root = t.root();
    let e = root.sysctl_set("vm.swappiness", "1").unwrap_err();
    assert!(matches!(e, RootError::Escapes { .. }), "{e}");
    assert!(matches!(
        root.write("/proc/sys/vm/swappiness", "1"),
        Err(RootError::BadPath { .. })
    ));
    assert!(matches!(
        root.write("proc/../../x", "1"),
        Err(RootError::BadPath { .. })
    ));
    assert!(matches!(
        root.create_dir("proc/sys/vm/hftnet"),
        Err(RootError::Escapes { .. })
    ));
    assert_eq!(outside.get("swappiness"), "60");
    assert!(!outside.dir.join("hftnet").exists());
}

#[test]
fn cpuset_refuses_bad_cpu_choices() {
    let t = realistic("v1-bad");
    add_cgroup_v1(&t);
    let root = t.root();
    let opts = IsolationOptions::default();
    assert!(matches!(
        plan_cpu_isolation(&root, &[], &opts),
        Err(PlanError::NoCpus)
    ));
    let e = plan_cpu_isolation(&root, &[4], &opts).unwrap_err();
    assert_eq!(e.to_string(), "CPU(s) 4 not available (available: 0-3)");
    let e = plan_cpu_isolation(&root, &[0, 1, 2, 3], &opts).unwrap_err();
    assert!(matches!(e, PlanError::NoHousekeeping(_)), "{e}");
    // docker (0-1) would be emptied.
    let e = plan_cpu_isolation(&root, &[0, 1], &opts).unwrap_err();
    assert_eq!(
        e.to_string(),
        "sys/fs/cgroup/cpuset/docker: would be left with no CPU after excluding 0-1"
    );
    let t2 = realistic("no-cpuset");
    assert!(matches!(
        plan_cpu_isolation(&t2.root(), &[2], &opts),
        Err(PlanError::NoCpuset)
    ));
}

/// Everything the planner can name on a host with cpusets (v1 with
/// processes to move, v2 with a controller to enable), IRQs, cpufreq and
/// cpuidle is inside what an apply may touch ([`hftnet_tune::scope`]):
/// the allowlist a snapshot is checked against is complete.
#[test]
fn every_planned_change_is_in_scope() {
    for (tag, add) in [
        ("scope-v1", add_cgroup_v1 as fn(&FakeTree)),
        ("scope-v2", add_cgroup_v2),
    ] {
        let t = realistic(tag);
        add(&t);
        let root = t.root();
        let services = FakeServices::new(&[("irqbalance", true)]);
        let access = System {
            root: root.clone(),
            ethtool: None,
            services: &services,
        };
        let profile = Profile::load("latency")
            .unwrap()
            .expand(&[2, 3], &[0, 1, 2, 3]);
        let (input, notes) =
            hftnet_tune::audit::prepare(&root, &profile, &[], &[2, 3]).expect("prepare");
        let p = plan(&profile, &input, &access).expect("plan");
        let kinds = |f: fn(&Target) -> bool| p.changes.iter().filter(|c| f(&c.target)).count();
        assert!(
            kinds(|t| matches!(t, Target::HostOp { .. })) >= 1,
            "{tag}: {p:?} {notes:?}"
        );
        assert!(
            kinds(|t| matches!(t, Target::File { .. })) >= 5,
            "{tag}: {p:?}"
        );
        assert!(
            kinds(|t| matches!(t, Target::Sysctl { .. })) >= 1,
            "{tag}: {p:?}"
        );
        assert!(
            kinds(|t| matches!(t, Target::Service { .. })) == 1,
            "{tag}: {p:?}"
        );
        // The isolation planner's own changes too (the files of the
        // cgroups it creates are not there to read at planning time).
        let isolation = input.isolation.iter().map(|c| c.target.clone());
        let targets: Vec<Target> = p
            .changes
            .iter()
            .map(|c| c.target.clone())
            .chain(isolation)
            .collect();
        assert!(
            targets.iter().any(|t| t.to_string().ends_with("cpuset.cpus") && t.to_string().contains("hftnet")),
            "{tag}: {targets:?}"
        );
        for c in &targets {
            access
                .check(c)
                .unwrap_or_else(|why| panic!("{tag}: {c}: {why}"));
        }
    }
}

// ---------------------------------------------------------------------------
// Writing, through the real entry points
// ---------------------------------------------------------------------------

/// The files the kernel gives a new cgroup.
const V1_NEW_CGROUP: &[(&str, &str)] = &[
    ("cpuset.cpus", ""),
    ("cpuset.mems", ""),
    ("cpuset.cpu_exclusive", "0"),
    ("cgroup.procs", ""),
    ("tasks", ""),
];

const V2_NEW_CGROUP: &[(&str, &str)] = &[
    ("cpuset.cpus", ""),
    ("cpuset.cpus.partition", "member"),
    ("cgroup.procs", ""),
];

/// The machine's [`System`] access on a fake tree, plus what the kernel
/// does that a plain directory does not: a created cgroup has its files,
/// and they go with it.
struct Kernelish<'a> {
    sys: System<'a>,
    tree: &'a FakeTree,
    cgroup_files: &'a [(&'a str, &'a str)],
}

impl Access for Kernelish<'_> {
    fn read(&self, t: &Target) -> Result<Option<String>, AccessError> {
        self.sys.read(t)
    }

    fn write(&self, t: &Target, v: &str) -> Result<(), AccessError> {
        let created = match t {
            Target::HostOp {
                op: HostOp::CreateDir { path, .. },
            } => Some(path.clone()),
            _ => None,
        };
        match created {
            Some(path) if v == "directory" => {
                self.sys.write(t, v)?;
                for (f, content) in self.cgroup_files {
                    self.tree.file(&format!("{path}/{f}"), content);
                }
                Ok(())
            }
            Some(path) => {
                // The kernel's files go with the directory.
                for e in fs::read_dir(self.tree.dir.join(&path))
                    .into_iter()
                    .flatten()
                {
                    let e = e.expect("entry");
                    if e.file_type().expect("type").is_file() {
                        fs::remove_file(e.path()).expect("rm");
                    }
                }
                self.sys.write(t, v)
            }
            None => {
                self.sys.write(t, v)?;
                // The kernel shows a moved process in its new cpuset.
                if let Target::HostOp {
                    op: op @ HostOp::MoveProcess { pid, to, .. },
                } = t
                {
                    let now = if v == op.new_value() {
                        let cg = to.trim_end_matches("/cgroup.procs");
                        format!("/{}", cg.rsplit('/').next().unwrap_or(""))
                    } else {
                        "/".into()
                    };
                    self.tree.file(&format!("proc/{pid}/cpuset"), &now);
                }
                Ok(())
            }
        }
    }

    fn check(&self, t: &Target) -> Result<(), String> {
        self.sys.check(t)
    }

    fn dir_id(&self, path: &str) -> Option<DirId> {
        self.sys.dir_id(path)
    }
}

fn new_snapshot() -> Snapshot {
    Snapshot {
        format: SNAPSHOT_FORMAT.into(),
        host: HostId {
            machine_id: "fake".into(),
            hostname: "fake".into(),
        },
        created_unix: 0,
        profile: "t".into(),
        entries: Vec::new(),
    }
}

/// One `tune apply` on a fake tree: the profile expanded for `cpus`,
/// `prepare`, `plan`, `apply` (the snapshot outside the tree).
struct Run<'a> {
    access: Kernelish<'a>,
    plan: Plan,
    notes: Vec<String>,
    report: ApplyReport,
    snapshot: Snapshot,
    _snap_dir: FakeTree,
}

fn run<'a>(
    t: &'a FakeTree,
    services: &'a FakeServices,
    profile: &str,
    ifaces: &[&str],
    cpus: &[usize],
    cgroup_files: &'a [(&'a str, &'a str)],
) -> Run<'a> {
    run_with(t, services, profile, ifaces, cpus, cgroup_files, |_| {})
}

fn run_with<'a>(
    t: &'a FakeTree,
    services: &'a FakeServices,
    profile: &str,
    ifaces: &[&str],
    cpus: &[usize],
    cgroup_files: &'a [(&'a str, &'a str)],
    between: impl FnOnce(&Plan),
) -> Run<'a> {
    let root = t.root();
    let access = Kernelish {
        sys: System {
            root: root.clone(),
            ethtool: None,
            services,
        },
        tree: t,
        cgroup_files,
    };
    let profile = Profile::parse("t", profile)
        .expect("profile")
        .expand(cpus, &[0, 1, 2, 3]);
    let ifaces: Vec<String> = ifaces.iter().map(|s| (*s).to_owned()).collect();
    let (input, notes) =
        hftnet_tune::audit::prepare(&root, &profile, &ifaces, cpus).expect("prepare");
    let p = plan(&profile, &input, &access).expect("plan");
    between(&p);
    let snap_dir = FakeTree::new("snap");
    let mut snapshot = new_snapshot();
    let report = apply(&p, &access, &mut snapshot, &snap_dir.dir.join("s.json")).expect("apply");
    Run {
        access,
        plan: p,
        notes,
        report,
        snapshot,
        _snap_dir: snap_dir,
    }
}

impl Run<'_> {
    fn changes(&self) -> Vec<(String, &str, &str)> {
        self.plan
            .changes
            .iter()
            .map(|c| (c.target.to_string(), c.old.as_str(), c.new.as_str()))
            .collect()
    }

    fn revert(&self) {
        let r = revert(&self.snapshot, &self.access, false).expect("in scope");
        assert_eq!((r.conflicts, r.failures), (0, 0), "{r:?}");
    }
}

fn c(target: &str, old: &str, new: &str) -> (String, String, String) {
    (target.to_owned(), old.to_owned(), new.to_owned())
}

fn owned(v: Vec<(String, &str, &str)>) -> Vec<(String, String, String)> {
    v.into_iter()
        .map(|(t, o, n)| (t, o.to_owned(), n.to_owned()))
        .collect()
}

#[test]
fn reads_and_plans_never_write() {
    let t = realistic("readonly");
    add_cgroup_v1(&t);
    let before = t.snapshot();
    let root = t.root();
    let _ = HostFacts::read_with_env(&root, &["ens1f0", "eth0"], &env("/usr/bin", None));
    let services = FakeServices::new(&[("irqbalance", true)]);
    let access = System {
        root: root.clone(),
        ethtool: None,
        services: &services,
    };
    let profile = Profile::load("latency")
        .unwrap()
        .expand(&[2, 3], &[0, 1, 2, 3]);
    let (input, _) = hftnet_tune::audit::prepare(&root, &profile, &[], &[2, 3]).expect("prepare");
    let p = plan(&profile, &input, &access).expect("plan");
    assert!(p.changes.len() > 10, "{p:?}");
    assert_eq!(t.snapshot(), before);
    assert_eq!(services.calls(), ["is-active irqbalance"]);
}

#[test]
fn irq_affinity_round_trip() {
    let t = realistic("irq-rt");
    let before = t.snapshot();
    let services = FakeServices::new(&[]);
    let r = run(
        &t,
        &services,
        "name = \"t\"\n[irq]\naffinity = \"{cpus}\"\n",
        &["ens1f0"],
        &[2, 3],
        &[],
    );
    let want: Vec<_> = (120..=125)
        .map(|i| c(&format!("/proc/irq/{i}/smp_affinity_list"), "0-3", "2-3"))
        .collect();
    assert_eq!(owned(r.changes()), want);
    assert!(r.report.failed.is_none(), "{:?}", r.report);
    assert_eq!(t.get("proc/irq/121/smp_affinity_list"), "2-3");
    assert_eq!(
        t.get("proc/irq/130/smp_affinity_list"),
        "2",
        "ens1f1's, not touched"
    );
    r.revert();
    assert_eq!(t.snapshot(), before);
}

#[test]
fn sysctl_round_trip() {
    let t = realistic("sysctl");
    let before = t.snapshot();
    let services = FakeServices::new(&[]);
    let profile = r#"name = "t"
[sysctl]
"net.core.busy_poll" = "50"
"net.core.busy_read" = "50"
"net.ipv4.tcp_rmem" = "4096  87380	16777216"
"net.ipv4.tcp_low_latency" = "1"
"net.core.somaxconn" = "4096"
"vm.swappiness" = "10"
"#;
    let r = run(&t, &services, profile, &[], &[], &[]);
    assert_eq!(
        owned(r.changes()),
        vec![
            c("sysctl net.core.busy_poll", "0", "50"),
            c("sysctl net.core.busy_read", "0", "50"),
            c(
                "sysctl net.ipv4.tcp_rmem",
                "4096 131072 6291456",
                "4096  87380\t16777216"
            ),
            c("sysctl vm.swappiness", "60", "10"),
        ]
    );
    let skipped: Vec<(&str, &str)> = r
        .plan
        .skipped
        .iter()
        .map(|s| (s.target.as_str(), s.reason.as_str()))
        .collect();
    assert!(skipped.contains(&(
        "sysctl net.ipv4.tcp_low_latency",
        "not present on this kernel"
    )));
    assert!(skipped.contains(&("sysctl net.core.somaxconn", "already set")));
    assert_eq!(t.get("proc/sys/net/core/busy_poll"), "50");
    r.revert();
    // The kernel takes "4096 131072 6291456" for its tab-separated form:
    // equal but for whitespace.
    let norm = |m: BTreeMap<String, String>| -> BTreeMap<String, String> {
        m.into_iter()
            .map(|(k, v)| (k, v.split_whitespace().collect::<Vec<_>>().join(" ")))
            .collect()
    };
    assert_eq!(norm(t.snapshot()), norm(before));
    assert!(matches!(
        t.root().sysctl_set("net.ipv4.tcp_low_latency", "1"),
        Err(RootError::NotPresent { .. })
    ));
}

#[test]
fn governor_and_cstates_round_trip() {
    let t = realistic("cpu");
    // cpu1 has no cpufreq (as in most VMs).
    fs::remove_dir_all(t.dir.join("sys/devices/system/cpu/cpu1/cpufreq")).expect("rm");
    let before = t.snapshot();
    let services = FakeServices::new(&[]);
    let profile =
        "name = \"t\"\n[cpu]\ngovernor = \"performance\"\nmax_cstate_latency_us = \"0\"\n";
    let r = run(&t, &services, profile, &[], &[1, 2, 3], &[]);
    let cpu = "/sys/devices/system/cpu";
    let mut want = vec![
        c(
            &format!("{cpu}/cpu2/cpufreq/scaling_governor"),
            "powersave",
            "performance",
        ),
        c(
            &format!("{cpu}/cpu3/cpufreq/scaling_governor"),
            "powersave",
            "performance",
        ),
    ];
    for (n, k) in [
        (1, 1),
        (1, 2),
        (1, 3),
        (2, 1),
        (2, 2),
        (2, 3),
        (3, 1),
        (3, 2),
    ] {
        want.push(c(
            &format!("{cpu}/cpu{n}/cpuidle/state{k}/disable"),
            "0",
            "1",
        ));
    }
    let mut got = owned(r.changes());
    got.sort();
    want.sort();
    assert_eq!(got, want);
    assert_eq!(
        t.get("sys/devices/system/cpu/cpu3/cpufreq/scaling_governor"),
        "performance"
    );
    assert_eq!(
        t.get("sys/devices/system/cpu/cpu2/cpuidle/state0/disable"),
        "0",
        "polling stays"
    );
    r.revert();
    assert_eq!(t.snapshot(), before);
}

#[test]
fn irqbalance_is_stopped_and_started_through_services() {
    let t = realistic("irqbalance");
    let services = FakeServices::new(&[("irqbalance", true)]);
    let r = run(
        &t,
        &services,
        "name = \"t\"\n[cpu]\nstop_irqbalance = \"on\"\n",
        &[],
        &[2],
        &[],
    );
    assert_eq!(
        owned(r.changes()),
        vec![c("service irqbalance", "active", "inactive")]
    );
    r.revert();
    assert_eq!(
        services.calls(),
        [
            "is-active irqbalance",
            "is-active irqbalance",
            "stop irqbalance",
            "is-active irqbalance",
            "is-active irqbalance",
            "start irqbalance",
        ]
    );
    // Not installed: skipped, nothing run.
    let none = FakeServices::new(&[]);
    let r = run(
        &t,
        &none,
        "name = \"t\"\n[cpu]\nstop_irqbalance = \"on\"\n",
        &[],
        &[2],
        &[],
    );
    assert!(r.plan.changes.is_empty(), "{:?}", r.plan);
    assert!(none.calls().iter().all(|c| c.starts_with("is-active")));
}

const ISOLATE: &str = "name = \"t\"\n[cpu]\nisolate = \"on\"\n";

/// IRQ, default-affinity and workqueue changes isolating CPUs 2-3 on the
/// realistic host.
fn irq_isolation_changes() -> Vec<(String, String, String)> {
    let mut v: Vec<_> = [0, 36, 37, 120, 121, 122, 123, 124, 125]
        .iter()
        .map(|i| c(&format!("/proc/irq/{i}/smp_affinity_list"), "0-3", "0-1"))
        .collect();
    v.push(c("/proc/irq/130/smp_affinity_list", "2", "0-1"));
    v.push(c("/proc/irq/default_smp_affinity", "f", "3"));
    v.push(c("/sys/devices/virtual/workqueue/cpumask", "f", "3"));
    v
}

#[test]
fn cpuset_v1_isolation_round_trip() {
    let t = realistic("v1");
    add_cgroup_v1(&t);
    let before = t.snapshot();
    let services = FakeServices::new(&[]);
    let r = run(&t, &services, ISOLATE, &[], &[3, 2], V1_NEW_CGROUP);
    let d = "/sys/fs/cgroup/cpuset";
    let hk = format!("{d}/{V1_HOUSEKEEPING}");
    let mv = |pid: u32| {
        c(
            &format!("process {pid} → {hk}/cgroup.procs"),
            &format!("{pid} in sys/fs/cgroup/cpuset/cgroup.procs"),
            &pid.to_string(),
        )
    };
    let mut want = vec![
        c(&format!("{d}/machine/vm1/cpuset.cpus"), "1-2", "1"),
        c(&format!("{d}/machine/cpuset.cpus"), "0-3", "0-1"),
        c(&format!("{hk}/ (cgroup)"), "absent", "directory"),
        c(&format!("{hk}/cpuset.mems"), "", "0"),
        c(&format!("{hk}/cpuset.cpus"), "", "0-1"),
        c(&format!("{d}/hftnet/ (cgroup)"), "absent", "directory"),
        c(&format!("{d}/hftnet/cpuset.mems"), "", "0"),
        c(&format!("{d}/hftnet/cpuset.cpus"), "", "2-3"),
        c(&format!("{d}/hftnet/cpuset.cpu_exclusive"), "0", "1"),
        mv(1),
        mv(812),
        mv(900),
    ];
    want.extend(irq_isolation_changes());
    assert_eq!(owned(r.changes()), want);
    assert!(r.notes.is_empty(), "{:?}", r.notes);
    assert!(
        r.report.failed.is_none() && r.report.snapshot_error.is_none(),
        "{:?}",
        r.report
    );
    assert_eq!(t.get("sys/fs/cgroup/cpuset/hftnet/cpuset.cpus"), "2-3");
    assert_eq!(
        t.get("sys/fs/cgroup/cpuset/hftnet/cpuset.cpu_exclusive"),
        "1"
    );
    assert_eq!(t.get("sys/fs/cgroup/cpuset/machine/cpuset.cpus"), "0-1");
    assert_eq!(t.get("sys/fs/cgroup/cpuset/docker/cpuset.cpus"), "0-1");
    assert_eq!(t.get("proc/irq/130/smp_affinity_list"), "0-1");
    // A regular file stands in for cgroup.procs: it holds the last PID written.
    assert_eq!(
        t.get(&format!(
            "sys/fs/cgroup/cpuset/{V1_HOUSEKEEPING}/cgroup.procs"
        )),
        "900"
    );
    r.revert();
    let mut after = t.snapshot();
    // ...and for the root's: the last PID moved back.
    assert_eq!(
        after
            .insert(
                "sys/fs/cgroup/cpuset/cgroup.procs".into(),
                before["sys/fs/cgroup/cpuset/cgroup.procs"].clone()
            )
            .as_deref(),
        Some("1")
    );
    assert_eq!(after, before);

    // Again, but meanwhile PID 812 exited and names another process (a new
    // start time) and 900 was moved to another cpuset by someone: neither
    // is moved back, and the revert says so; 1 is.
    t.file("sys/fs/cgroup/cpuset/cgroup.procs", "1\n2\n52\n812\n900");
    let r = run(&t, &services, ISOLATE, &[], &[3, 2], V1_NEW_CGROUP);
    assert!(r.report.failed.is_none(), "{:?}", r.report);
    t.file(
        "proc/812/stat",
        "812 (bash) S 1 812 812 0 -1 4194560 100 0 0 0 0 0 0 0 20 0 1 0 99999",
    );
    t.file("proc/812/cpuset", &format!("/{V1_HOUSEKEEPING}"));
    t.file("proc/900/cpuset", "/docker");
    t.file("sys/fs/cgroup/cpuset/cgroup.procs", "");
    let rr = revert(&r.snapshot, &r.access, false).expect("in scope");
    assert_eq!((rr.conflicts, rr.failures), (0, 0), "{rr:?}");
    let result = |pid: u32| {
        rr.outcomes
            .iter()
            .find(|o| o.target.starts_with(&format!("process {pid} ")))
            .map(|o| o.result.clone())
            .unwrap_or_default()
    };
    assert_eq!(result(1), "undone");
    assert!(
        result(812).contains("left alone") && result(812).contains("another process"),
        "{}",
        result(812)
    );
    assert!(
        result(900).contains("left alone") && result(900).contains("is not in"),
        "{}",
        result(900)
    );
    // Only PID 1 was written back to the root cpuset.
    assert_eq!(t.get("sys/fs/cgroup/cpuset/cgroup.procs"), "1");

    // A snapshot of an older hftnet has no start time: left alone, said so.
    let mut old = r.snapshot.clone();
    for e in &mut old.entries {
        if let Target::HostOp {
            op: HostOp::MoveProcess { start_time, .. },
        } = &mut e.target
        {
            *start_time = None;
        }
    }
    t.file("proc/1/cpuset", &format!("/{V1_HOUSEKEEPING}"));
    t.file("sys/fs/cgroup/cpuset/cgroup.procs", "");
    let rr = revert(&old, &r.access, false).expect("in scope");
    let one = rr
        .outcomes
        .iter()
        .find(|o| o.target.starts_with("process 1 "))
        .expect("process 1");
    assert!(
        one.result.contains("left alone") && one.result.contains("does not record its start time"),
        "{}",
        one.result
    );
    assert_eq!(t.get("sys/fs/cgroup/cpuset/cgroup.procs"), "");
}

#[test]
fn cpuset_v2_isolation_round_trip() {
    let t = realistic("v2");
    add_cgroup_v2(&t);
    let before = t.snapshot();
    let services = FakeServices::new(&[]);
    let r = run(&t, &services, ISOLATE, &[], &[2, 3], V2_NEW_CGROUP);
    let d = "/sys/fs/cgroup";
    let mut want = vec![
        c(
            &format!("{d}/cgroup.subtree_control +cpuset"),
            "cpu io memory pids",
            "cpu io memory pids +cpuset",
        ),
        c(&format!("{d}/init.scope/cpuset.cpus"), "", "0-1"),
        c(&format!("{d}/system.slice/cpuset.cpus"), "", "0-1"),
        c(&format!("{d}/user.slice/cpuset.cpus"), "", "0-1"),
        c(
            &format!("{d}/hftnet.slice/ (cgroup)"),
            "absent",
            "directory",
        ),
        c(&format!("{d}/hftnet.slice/cpuset.cpus"), "", "2-3"),
        c(
            &format!("{d}/hftnet.slice/cpuset.cpus.partition"),
            "member",
            "isolated",
        ),
    ];
    want.extend(irq_isolation_changes());
    assert_eq!(owned(r.changes()), want);
    assert!(r.report.failed.is_none(), "{:?}", r.report);
    assert_eq!(
        t.get("sys/fs/cgroup/hftnet.slice/cpuset.cpus.partition"),
        "isolated"
    );
    assert_eq!(t.get("sys/fs/cgroup/system.slice/cpuset.cpus"), "0-1");
    r.revert();
    // The kernel shows the controller list again; the fake file holds what
    // was written to it.
    let mut after = t.snapshot();
    assert_eq!(
        after
            .insert(
                "sys/fs/cgroup/cgroup.subtree_control".into(),
                "cpu io memory pids".into()
            )
            .as_deref(),
        Some("-cpuset")
    );
    assert_eq!(after, before);

    // Older kernels: partition `root` (5.2-6.0), none before.
    let root = t.root();
    let opts = IsolationOptions::default();
    let last = |p: hftnet_tune::cpuset::Isolation| {
        let c = p.changes.last().expect("a change").clone();
        (c.target.to_string(), c.new)
    };
    t.file("proc/sys/kernel/osrelease", "5.15.0-100-generic");
    let p = plan_cpu_isolation(&root, &[2, 3], &opts).expect("plan");
    assert!(
        p.changes
            .iter()
            .any(|c| c.target.to_string().ends_with("cpuset.cpus.partition") && c.new == "root")
    );
    t.file("proc/sys/kernel/osrelease", "4.19.0");
    let p = plan_cpu_isolation(
        &root,
        &[2, 3],
        &IsolationOptions {
            move_irqs: false,
            ..opts
        },
    );
    let p = p.expect("plan");
    assert_eq!(p.notes.len(), 1, "{:?}", p.notes);
    assert_eq!(
        last(p),
        (
            "/sys/fs/cgroup/hftnet.slice/cpuset.cpus".to_owned(),
            "2-3".to_owned()
        )
    );
}

/// A best-effort change that fails (an IRQ that went away) is reported and
/// the apply goes on; any other failure rolls back what was applied.
#[test]
fn best_effort_failures_are_skipped_others_roll_back() {
    let t = realistic("best-effort");
    add_cgroup_v2(&t);
    let before = t.snapshot();
    let services = FakeServices::new(&[]);
    let gone = "proc/irq/121/smp_affinity_list";
    let r = run_with(&t, &services, ISOLATE, &[], &[2, 3], V2_NEW_CGROUP, |_| {
        fs::remove_file(t.dir.join(gone)).expect("rm");
    });
    assert!(r.report.failed.is_none(), "{:?}", r.report);
    let o = r
        .report
        .outcomes
        .iter()
        .find(|o| o.target == format!("/{gone}"))
        .expect("outcome");
    assert!(
        o.result.starts_with("failed, left as it was (best effort)"),
        "{o:?}"
    );
    assert_eq!(
        t.get("proc/irq/122/smp_affinity_list"),
        "0-1",
        "the rest applied"
    );
    r.revert();
    let mut was = before.clone();
    was.remove(gone);
    let mut after = t.snapshot();
    after.insert(
        "sys/fs/cgroup/cgroup.subtree_control".into(),
        "cpu io memory pids".into(),
    );
    assert_eq!(after, was);

    // A governor file that vanishes is not best effort: everything rolls back.
    let t = realistic("rollback");
    let before = t.snapshot();
    let gov = "sys/devices/system/cpu/cpu3/cpufreq/scaling_governor";
    let profile = "name = \"t\"\n[cpu]\ngovernor = \"performance\"\n[thp]\nenabled = \"never\"\n";
    let r = run_with(&t, &services, profile, &[], &[2, 3], &[], |_| {
        fs::remove_file(t.dir.join(gov)).expect("rm");
    });
    assert!(
        r.report
            .failed
            .as_deref()
            .is_some_and(|f| f.contains("not present")),
        "{:?}",
        r.report
    );
    let mut was = before.clone();
    was.remove(gov);
    assert_eq!(t.snapshot(), was, "rolled back");
}
