//! Host facts: what the kernel, the CPUs, the sysctls, the IRQs of an
//! interface and the kernel-bypass stacks are set to ([`HostFacts::read`]),
//! for `tune audit` and the planner's inputs.
//!
//! Invariants: **reads never write**, and only through the [`Root`]; a file
//! that does not exist is reported as absent (`None`, "not present on this
//! kernel"), never as an error, and a file that cannot be read is listed in
//! [`HostFacts::problems`].

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};

use crate::cpuset::{CpusetMount, detect_cpuset};
use crate::root::{Root, RootError, bracketed, parse_cpu_list};

/// Kernel and VM sysctls that matter for latency, read by [`HostFacts::read`].
pub const KERNEL_SYSCTLS: &[&str] = &[
    "kernel.sched_rt_runtime_us",
    "kernel.sched_rt_period_us",
    "kernel.numa_balancing",
    "kernel.timer_migration",
    "kernel.watchdog",
    "kernel.nmi_watchdog",
    "kernel.soft_watchdog",
    "kernel.watchdog_thresh",
    "kernel.watchdog_cpumask",
    "kernel.sched_autogroup_enabled",
    "vm.swappiness",
    "vm.nr_hugepages",
    "vm.stat_interval",
    "vm.zone_reclaim_mode",
    "vm.dirty_ratio",
    "vm.dirty_background_ratio",
];

/// Network sysctls named by the tuning seeds and `tuned`'s
/// `network-latency` profile, read by [`HostFacts::read`].
pub const NET_SYSCTLS: &[&str] = &[
    "net.core.busy_poll",
    "net.core.busy_read",
    "net.core.rmem_max",
    "net.core.wmem_max",
    "net.core.rmem_default",
    "net.core.wmem_default",
    "net.core.optmem_max",
    "net.core.netdev_max_backlog",
    "net.core.netdev_budget",
    "net.core.netdev_budget_usecs",
    "net.core.somaxconn",
    "net.core.default_qdisc",
    "net.ipv4.tcp_rmem",
    "net.ipv4.tcp_wmem",
    "net.ipv4.tcp_mem",
    "net.ipv4.udp_rmem_min",
    "net.ipv4.udp_wmem_min",
    "net.ipv4.udp_mem",
    "net.ipv4.tcp_low_latency",
    "net.ipv4.tcp_sack",
    "net.ipv4.tcp_timestamps",
    "net.ipv4.tcp_fastopen",
    "net.ipv4.tcp_slow_start_after_idle",
    "net.ipv4.tcp_autocorking",
    "net.ipv4.tcp_notsent_lowat",
    "net.ipv4.tcp_no_metrics_save",
    "net.ipv4.tcp_congestion_control",
    "net.ipv4.tcp_thin_linear_timeouts",
    "net.ipv4.tcp_mtu_probing",
];

/// Kernel modules that mean OpenOnload (or Solarflare's char/resource
/// drivers it needs) is loaded.
pub const ONLOAD_MODULES: &[&str] = &["onload", "sfc_char", "sfc_resource"];

/// Kernel command-line parameters that matter for latency; those present are
/// copied into [`CmdlineFacts::latency_params`].
pub const LATENCY_CMDLINE_PARAMS: &[&str] = &[
    "isolcpus",
    "nohz_full",
    "rcu_nocbs",
    "rcu_nocb_poll",
    "irqaffinity",
    "housekeeping",
    "kthread_cpus",
    "nohz",
    "skew_tick",
    "nosoftlockup",
    "nowatchdog",
    "nmi_watchdog",
    "intel_idle.max_cstate",
    "processor.max_cstate",
    "idle",
    "cpuidle.off",
    "intel_pstate",
    "amd_pstate",
    "transparent_hugepage",
    "default_hugepagesz",
    "hugepagesz",
    "hugepages",
    "mitigations",
    "tsc",
    "clocksource",
    "numa_balancing",
    "audit",
    "threadirqs",
    "preempt",
    "intel_iommu",
    "iommu",
];

/// Everything `hftnet tune audit` reports about the host. Every field is
/// optional or empty when its file does not exist on this kernel.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostFacts {
    /// `kernel.osrelease`.
    pub kernel_release: Option<String>,
    /// `/sys/devices/system/clocksource/clocksource0/current_clocksource`.
    pub clocksource: Option<String>,
    /// Boot-time isolation from `/proc/cmdline`.
    pub cmdline: CmdlineFacts,
    /// CPUs: isolation, SMT, frequency governor, C-states.
    pub cpus: CpuFacts,
    /// Transparent huge pages.
    pub thp: ThpFacts,
    /// Huge pages (`/proc/meminfo` and per size).
    pub hugepages: HugepageFacts,
    /// [`KERNEL_SYSCTLS`] and [`NET_SYSCTLS`] by dotted name; `None` when not
    /// present on this kernel. Multi-value sysctls are single-spaced.
    pub sysctls: BTreeMap<String, Option<String>>,
    /// `/proc/irq/default_smp_affinity` (a CPU mask).
    pub default_irq_affinity: Option<String>,
    /// One entry per interface asked for, in the order asked.
    pub interfaces: Vec<InterfaceFacts>,
    /// Whether irqbalance is running.
    pub irqbalance: IrqbalanceFacts,
    /// OpenOnload / VMA / XLIO.
    pub bypass: BypassFacts,
    /// Where the cpuset controller is mounted, if anywhere.
    pub cpuset: Option<CpusetMount>,
    /// Files that exist but could not be read, with the reason.
    pub problems: Vec<Problem>,
}

/// A file that exists but could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Problem {
    /// Path relative to the root.
    pub path: String,
    /// The error.
    pub error: String,
}

/// Latency-relevant kernel command-line parameters.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CmdlineFacts {
    /// `/proc/cmdline` as read.
    pub raw: Option<String>,
    /// `isolcpus=`.
    pub isolcpus: Option<CpuParam>,
    /// `nohz_full=`.
    pub nohz_full: Option<CpuParam>,
    /// `rcu_nocbs=` (no value: all CPUs, on kernels that accept that).
    pub rcu_nocbs: Option<CpuParam>,
    /// `irqaffinity=` (the default IRQ affinity at boot).
    pub irqaffinity: Option<CpuParam>,
    /// Every parameter of [`LATENCY_CMDLINE_PARAMS`] present, with its value
    /// (`""` for a flag such as `nosoftlockup`).
    pub latency_params: BTreeMap<String, String>,
}

/// A kernel parameter holding a CPU list, possibly led by flags
/// (`isolcpus=managed_irq,domain,2-3`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuParam {
    /// The value as written.
    pub value: String,
    /// Leading flags (`nohz`, `domain`, `managed_irq`).
    pub flags: Vec<String>,
    /// The CPUs; `None` when the list is empty or could not be parsed.
    pub cpus: Option<Vec<usize>>,
    /// Why the list could not be parsed.
    pub error: Option<String>,
}

impl CpuParam {
    /// Splits `value` into leading flags and a CPU list.
    pub fn parse(value: &str) -> CpuParam {
        let mut flags = Vec::new();
        let mut rest: Vec<&str> = Vec::new();
        for part in value.split(',') {
            let is_flag = rest.is_empty()
                && !part.is_empty()
                && part.chars().all(|c| c.is_ascii_alphabetic() || c == '_');
            if is_flag {
                flags.push(part.to_owned());
            } else {
                rest.push(part);
            }
        }
        let list = rest.join(",");
        let (cpus, error) = if list.is_empty() {
            (None, None)
        } else {
            match parse_cpu_list(&list) {
                Ok(c) => (Some(c), None),
                Err(e) => (None, Some(e.to_string())),
            }
        };
        CpuParam {
            value: value.to_owned(),
            flags,
            cpus,
            error,
        }
    }
}

impl CmdlineFacts {
    /// Parses a kernel command line (words after a lone `--` go to init and
    /// are ignored).
    pub fn parse(raw: &str) -> CmdlineFacts {
        let mut facts = CmdlineFacts {
            raw: Some(raw.to_owned()),
            ..CmdlineFacts::default()
        };
        for word in raw.split_whitespace() {
            if word == "--" {
                break;
            }
            let (key, value) = word.split_once('=').unwrap_or((word, ""));
            if LATENCY_CMDLINE_PARAMS.contains(&key) {
                facts
                    .latency_params
                    .insert(key.to_owned(), value.to_owned());
            }
            let slot = match key {
                "isolcpus" => &mut facts.isolcpus,
                "nohz_full" => &mut facts.nohz_full,
                "rcu_nocbs" => &mut facts.rcu_nocbs,
                "irqaffinity" => &mut facts.irqaffinity,
                _ => continue,
            };
            *slot = Some(CpuParam::parse(value));
        }
        facts
    }
}

/// Host-wide and per-CPU facts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuFacts {
    /// `/sys/devices/system/cpu/online`.
    pub online: Option<Vec<usize>>,
    /// `/sys/devices/system/cpu/possible`.
    pub possible: Option<Vec<usize>>,
    /// `/sys/devices/system/cpu/isolated` (CPUs isolated with `isolcpus`).
    pub isolated: Option<Vec<usize>>,
    /// `/sys/devices/system/cpu/nohz_full` (absent unless the kernel has
    /// `CONFIG_NO_HZ_FULL`).
    pub nohz_full: Option<Vec<usize>>,
    /// `/sys/devices/system/cpu/smt/active`.
    pub smt_active: Option<bool>,
    /// `/sys/devices/system/cpu/smt/control` (`on`, `off`, `forceoff`,
    /// `notsupported`, `notimplemented`).
    pub smt_control: Option<String>,
    /// `/sys/devices/system/cpu/cpuidle/current_driver`.
    pub cpuidle_driver: Option<String>,
    /// `/sys/devices/system/cpu/cpuidle/current_governor` (or `_ro`).
    pub cpuidle_governor: Option<String>,
    /// One entry per `cpuN` directory.
    pub per_cpu: Vec<CpuEntry>,
}

/// One CPU.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CpuEntry {
    /// CPU number.
    pub cpu: usize,
    /// `cpuN/online`; `None` when the CPU cannot be taken offline (often cpu0).
    pub online: Option<bool>,
    /// In `/sys/devices/system/cpu/isolated` (or `isolcpus=` when that file
    /// is absent).
    pub isolated: bool,
    /// In `/sys/devices/system/cpu/nohz_full` (or `nohz_full=`).
    pub nohz_full: bool,
    /// In `rcu_nocbs=` (or `rcu_nocbs` given without a list).
    pub rcu_nocb: bool,
    /// `topology/core_id`.
    pub core_id: Option<u32>,
    /// `topology/physical_package_id`.
    pub package_id: Option<u32>,
    /// `topology/thread_siblings_list` (the SMT siblings, this CPU included).
    pub thread_siblings: Option<String>,
    /// NUMA node (`cpuN/nodeM`).
    pub node: Option<u32>,
    /// `cpufreq/scaling_governor`; `None` when the CPU has no cpufreq.
    pub governor: Option<String>,
    /// `cpufreq/scaling_available_governors`.
    pub available_governors: Option<Vec<String>>,
    /// `cpufreq/scaling_driver`.
    pub scaling_driver: Option<String>,
    /// `cpufreq/scaling_cur_freq`, kHz.
    pub cur_khz: Option<u64>,
    /// `cpufreq/scaling_min_freq`, kHz.
    pub min_khz: Option<u64>,
    /// `cpufreq/scaling_max_freq`, kHz.
    pub max_khz: Option<u64>,
    /// `cpuidle/stateK`, in order; empty when the CPU has no cpuidle.
    pub cstates: Vec<CState>,
}

/// One idle state of one CPU.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct CState {
    /// `K` of `stateK`.
    pub index: usize,
    /// `name` (`POLL`, `C1`, `C6`, `haltpoll idle`, ...).
    pub name: Option<String>,
    /// `latency`: exit latency, µs.
    pub latency_us: Option<u64>,
    /// `residency`: target residency, µs.
    pub residency_us: Option<u64>,
    /// `disable`.
    pub disabled: Option<bool>,
}

/// Transparent huge pages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ThpFacts {
    /// The bracketed value of `/sys/kernel/mm/transparent_hugepage/enabled`.
    pub enabled: Option<String>,
    /// The bracketed value of `.../defrag`.
    pub defrag: Option<String>,
}

/// Huge pages.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HugepageFacts {
    /// `Hugepagesize` of `/proc/meminfo`, kB (the default size).
    pub size_kb: Option<u64>,
    /// `HugePages_Total`.
    pub total: Option<u64>,
    /// `HugePages_Free`.
    pub free: Option<u64>,
    /// `HugePages_Rsvd`.
    pub reserved: Option<u64>,
    /// Per size, from `/sys/kernel/mm/hugepages/hugepages-<size>kB`.
    pub per_size: Vec<HugepageSize>,
}

/// Huge pages of one size.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HugepageSize {
    /// Page size, kB.
    pub size_kb: u64,
    /// `nr_hugepages`.
    pub nr: Option<u64>,
    /// `free_hugepages`.
    pub free: Option<u64>,
}

/// An interface's device and the IRQs of its queues.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct InterfaceFacts {
    /// Interface name.
    pub name: String,
    /// `/sys/class/net/NAME` exists.
    pub present: bool,
    /// The device directory (`/sys/class/net/NAME/device` resolved), relative
    /// to the root; `None` for virtual interfaces (veth, lo).
    pub device: Option<String>,
    /// The driver's name (`device/driver` resolved).
    pub driver: Option<String>,
    /// The IRQs found, by number.
    pub irqs: Vec<IrqFacts>,
}

/// One IRQ of an interface.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IrqFacts {
    /// IRQ number.
    pub irq: u32,
    /// The chip and action names from `/proc/interrupts`
    /// (`PCI-MSIX-0000:00:03.0 1-edge virtio2-input.0`).
    pub name: Option<String>,
    /// Found because a `/proc/interrupts` name contains the interface's or
    /// the device's name.
    pub by_name: bool,
    /// Found in the device's `msi_irqs`.
    pub by_msi: bool,
    /// `/proc/irq/N/smp_affinity_list`.
    pub affinity: Option<String>,
    /// `/proc/irq/N/effective_affinity_list`.
    pub effective_affinity: Option<String>,
    /// Interrupt counts per CPU.
    pub counts: Vec<u64>,
}

/// irqbalance.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct IrqbalanceFacts {
    /// A process named `irqbalance` exists.
    pub running: bool,
    /// Its PIDs.
    pub pids: Vec<u32>,
}

/// Kernel-bypass stacks: OpenOnload, VMA, XLIO.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct BypassFacts {
    /// Where `onload` was found in `PATH`.
    pub onload_binary: Option<String>,
    /// Loaded modules among [`ONLOAD_MODULES`].
    pub modules: Vec<String>,
    /// Preloaded bypass libraries.
    pub preloads: Vec<Preload>,
    /// OpenOnload present (binary, module or preload).
    pub onload: bool,
    /// VMA preloaded.
    pub vma: bool,
    /// XLIO preloaded.
    pub xlio: bool,
}

/// A preloaded bypass library.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Preload {
    /// The library as written.
    pub library: String,
    /// `onload`, `vma` or `xlio`.
    pub stack: String,
    /// `LD_PRELOAD` or `/etc/ld.so.preload`.
    pub from: String,
}

/// The parts of the process environment the audit looks at, passed in so
/// tests control them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ProcessEnv {
    /// `PATH`.
    pub path: Option<String>,
    /// `LD_PRELOAD`.
    pub ld_preload: Option<String>,
}

impl ProcessEnv {
    /// This process's `PATH` and `LD_PRELOAD`.
    pub fn current() -> ProcessEnv {
        ProcessEnv {
            path: std::env::var("PATH").ok(),
            ld_preload: std::env::var("LD_PRELOAD").ok(),
        }
    }
}

/// Reads through a root, collecting unreadable files as problems.
struct Reader<'a> {
    root: &'a Root,
    problems: Vec<Problem>,
}

impl Reader<'_> {
    fn read(&mut self, rel: &str) -> Option<String> {
        match self.root.read(rel) {
            Ok(v) => v,
            Err(e) => {
                self.problems.push(Problem {
                    path: rel.to_owned(),
                    error: e.to_string(),
                });
                None
            }
        }
    }

    fn num<T: std::str::FromStr>(&mut self, rel: &str) -> Option<T> {
        self.read(rel).and_then(|v| v.parse().ok())
    }

    fn cpus(&mut self, rel: &str) -> Option<Vec<usize>> {
        let v = self.read(rel)?;
        match parse_cpu_list(&v) {
            Ok(c) => Some(c),
            Err(e) => {
                self.problems.push(Problem {
                    path: rel.to_owned(),
                    error: e.to_string(),
                });
                None
            }
        }
    }

    fn list(&mut self, rel: &str) -> Vec<String> {
        match self.root.list(rel) {
            Ok(v) => v.unwrap_or_default(),
            Err(e) => {
                self.problems.push(Problem {
                    path: rel.to_owned(),
                    error: e.to_string(),
                });
                Vec::new()
            }
        }
    }

    fn note<T>(&mut self, rel: &str, r: Result<T, RootError>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(e) => {
                self.problems.push(Problem {
                    path: rel.to_owned(),
                    error: e.to_string(),
                });
                None
            }
        }
    }
}

const CPU_DIR: &str = "sys/devices/system/cpu";

impl HostFacts {
    /// Reads the host's facts, and the IRQs of `ifaces`, with this process's
    /// `PATH` and `LD_PRELOAD`. Never writes.
    pub fn read(root: &Root, ifaces: &[&str]) -> HostFacts {
        HostFacts::read_with_env(root, ifaces, &ProcessEnv::current())
    }

    /// As [`HostFacts::read`], with the environment given.
    pub fn read_with_env(root: &Root, ifaces: &[&str], env: &ProcessEnv) -> HostFacts {
        let mut r = Reader {
            root,
            problems: Vec::new(),
        };
        let kernel_release = r.read("proc/sys/kernel/osrelease");
        let clocksource = r.read("sys/devices/system/clocksource/clocksource0/current_clocksource");
        let cmdline = r
            .read("proc/cmdline")
            .map(|c| CmdlineFacts::parse(&c))
            .unwrap_or_default();
        let cpus = read_cpus(&mut r, &cmdline);
        let thp_dir = "sys/kernel/mm/transparent_hugepage";
        let thp = ThpFacts {
            enabled: r
                .read(&format!("{thp_dir}/enabled"))
                .map(|v| bracketed(&v).unwrap_or(&v).to_owned()),
            defrag: r
                .read(&format!("{thp_dir}/defrag"))
                .map(|v| bracketed(&v).unwrap_or(&v).to_owned()),
        };
        let hugepages = read_hugepages(&mut r);
        let mut sysctls = BTreeMap::new();
        for name in KERNEL_SYSCTLS.iter().chain(NET_SYSCTLS) {
            let v = r.note(name, root.sysctl_get(name)).flatten();
            sysctls.insert((*name).to_owned(), v);
        }
        let default_irq_affinity = r.read("proc/irq/default_smp_affinity");
        let interfaces = ifaces
            .iter()
            .map(|name| read_interface(&mut r, name))
            .collect();
        let pids = r
            .note("proc", find_processes(root, "irqbalance"))
            .unwrap_or_default();
        let irqbalance = IrqbalanceFacts {
            running: !pids.is_empty(),
            pids,
        };
        let bypass = r
            .note("proc/modules", detect_bypass(root, env))
            .unwrap_or_default();
        let cpuset = r.note("proc/mounts", detect_cpuset(root)).flatten();
        HostFacts {
            kernel_release,
            clocksource,
            cmdline,
            cpus,
            thp,
            hugepages,
            sysctls,
            default_irq_affinity,
            interfaces,
            irqbalance,
            bypass,
            cpuset,
            problems: r.problems,
        }
    }
}

fn cpu_dirs(r: &mut Reader<'_>) -> Vec<usize> {
    r.list(CPU_DIR)
        .iter()
        .filter_map(|n| n.strip_prefix("cpu")?.parse().ok())
        .collect()
}

fn read_cpus(r: &mut Reader<'_>, cmdline: &CmdlineFacts) -> CpuFacts {
    let online = r.cpus(&format!("{CPU_DIR}/online"));
    let possible = r.cpus(&format!("{CPU_DIR}/possible"));
    let isolated = r.cpus(&format!("{CPU_DIR}/isolated"));
    let nohz_full = r.cpus(&format!("{CPU_DIR}/nohz_full"));
    let smt_active = r.read(&format!("{CPU_DIR}/smt/active")).map(|v| v == "1");
    let smt_control = r.read(&format!("{CPU_DIR}/smt/control"));
    let cpuidle_driver = r.read(&format!("{CPU_DIR}/cpuidle/current_driver"));
    let cpuidle_governor = r
        .read(&format!("{CPU_DIR}/cpuidle/current_governor"))
        .or_else(|| r.read(&format!("{CPU_DIR}/cpuidle/current_governor_ro")));
    let param_cpus = |p: &Option<CpuParam>| p.as_ref().and_then(|p| p.cpus.clone());
    let iso_set = isolated.clone().or_else(|| param_cpus(&cmdline.isolcpus));
    let nohz_set = nohz_full.clone().or_else(|| param_cpus(&cmdline.nohz_full));
    let rcu_all = cmdline
        .rcu_nocbs
        .as_ref()
        .is_some_and(|p| p.value.is_empty());
    let rcu_set = param_cpus(&cmdline.rcu_nocbs);
    let mut per_cpu = Vec::new();
    for cpu in cpu_dirs(r) {
        let d = format!("{CPU_DIR}/cpu{cpu}");
        let mut e = CpuEntry {
            cpu,
            online: r.read(&format!("{d}/online")).map(|v| v == "1"),
            isolated: iso_set.as_ref().is_some_and(|s| s.contains(&cpu)),
            nohz_full: nohz_set.as_ref().is_some_and(|s| s.contains(&cpu)),
            rcu_nocb: rcu_all || rcu_set.as_ref().is_some_and(|s| s.contains(&cpu)),
            core_id: r.num(&format!("{d}/topology/core_id")),
            package_id: r.num(&format!("{d}/topology/physical_package_id")),
            thread_siblings: r.read(&format!("{d}/topology/thread_siblings_list")),
            node: r
                .list(&d)
                .iter()
                .find_map(|n| n.strip_prefix("node")?.parse().ok()),
            governor: r.read(&format!("{d}/cpufreq/scaling_governor")),
            available_governors: r
                .read(&format!("{d}/cpufreq/scaling_available_governors"))
                .map(|v| v.split_whitespace().map(str::to_owned).collect()),
            scaling_driver: r.read(&format!("{d}/cpufreq/scaling_driver")),
            cur_khz: r.num(&format!("{d}/cpufreq/scaling_cur_freq")),
            min_khz: r.num(&format!("{d}/cpufreq/scaling_min_freq")),
            max_khz: r.num(&format!("{d}/cpufreq/scaling_max_freq")),
            cstates: Vec::new(),
        };
        for index in cstate_indices(r.root, cpu) {
            let s = format!("{d}/cpuidle/state{index}");
            e.cstates.push(CState {
                index,
                name: r.read(&format!("{s}/name")),
                latency_us: r.num(&format!("{s}/latency")),
                residency_us: r.num(&format!("{s}/residency")),
                disabled: r.read(&format!("{s}/disable")).map(|v| v != "0"),
            });
        }
        per_cpu.push(e);
    }
    CpuFacts {
        online,
        possible,
        isolated,
        nohz_full,
        smt_active,
        smt_control,
        cpuidle_driver,
        cpuidle_governor,
        per_cpu,
    }
}

fn cstate_indices(root: &Root, cpu: usize) -> Vec<usize> {
    let mut v: Vec<usize> = root
        .list(&format!("{CPU_DIR}/cpu{cpu}/cpuidle"))
        .ok()
        .flatten()
        .unwrap_or_default()
        .iter()
        .filter_map(|n| n.strip_prefix("state")?.parse().ok())
        .collect();
    v.sort_unstable();
    v
}

fn read_hugepages(r: &mut Reader<'_>) -> HugepageFacts {
    let mut h = HugepageFacts::default();
    if let Some(meminfo) = r.read("proc/meminfo") {
        for line in meminfo.lines() {
            let Some((key, rest)) = line.split_once(':') else {
                continue;
            };
            let n = rest.split_whitespace().next().and_then(|v| v.parse().ok());
            match key.trim() {
                "Hugepagesize" => h.size_kb = n,
                "HugePages_Total" => h.total = n,
                "HugePages_Free" => h.free = n,
                "HugePages_Rsvd" => h.reserved = n,
                _ => {}
            }
        }
    }
    let dir = "sys/kernel/mm/hugepages";
    for name in r.list(dir) {
        let Some(size_kb) = name
            .strip_prefix("hugepages-")
            .and_then(|s| s.strip_suffix("kB"))
            .and_then(|s| s.parse().ok())
        else {
            continue;
        };
        h.per_size.push(HugepageSize {
            size_kb,
            nr: r.num(&format!("{dir}/{name}/nr_hugepages")),
            free: r.num(&format!("{dir}/{name}/free_hugepages")),
        });
    }
    h.per_size.sort_by_key(|s| s.size_kb);
    h
}

fn read_interface(r: &mut Reader<'_>, name: &str) -> InterfaceFacts {
    let base = format!("sys/class/net/{name}");
    let present = r.root.exists(&base);
    let device = r
        .note(
            &format!("{base}/device"),
            r.root.resolve(&format!("{base}/device")),
        )
        .flatten();
    let driver = r
        .note(
            &format!("{base}/device/driver"),
            r.root.resolve(&format!("{base}/device/driver")),
        )
        .flatten()
        .and_then(|d| d.rsplit('/').next().map(str::to_owned));
    let irqs = r
        .note("proc/interrupts", discover_irqs(r.root, name))
        .unwrap_or_default();
    InterfaceFacts {
        name: name.to_owned(),
        present,
        device,
        driver,
        irqs,
    }
}

/// One line of `/proc/interrupts` with a numeric IRQ.
struct InterruptLine {
    irq: u32,
    counts: Vec<u64>,
    name: String,
}

fn parse_interrupts(text: &str) -> Vec<InterruptLine> {
    let mut lines = text.lines();
    let ncpu = lines.next().map_or(0, |h| {
        h.split_whitespace()
            .filter(|w| w.starts_with("CPU"))
            .count()
    });
    let mut out = Vec::new();
    for line in lines {
        let Some((irq, rest)) = line.split_once(':') else {
            continue;
        };
        let Ok(irq) = irq.trim().parse::<u32>() else {
            continue;
        };
        let mut words = rest.split_whitespace().peekable();
        let mut counts = Vec::with_capacity(ncpu);
        while counts.len() < ncpu {
            match words.peek().and_then(|w| w.parse::<u64>().ok()) {
                Some(n) => {
                    counts.push(n);
                    words.next();
                }
                None => break,
            }
        }
        out.push(InterruptLine {
            irq,
            counts,
            name: words.collect::<Vec<_>>().join(" "),
        });
    }
    out
}

/// Whether `needle` occurs in `hay` as a whole name: the characters around
/// it are not letters or digits (`eth0` is in `eth0-TxRx-0` and
/// `i40e-eth0-TxRx-1`, not in `veth0` or `eth01`).
fn contains_name(hay: &str, needle: &str) -> bool {
    if needle.is_empty() {
        return false;
    }
    hay.match_indices(needle).any(|(i, _)| {
        let before = hay[..i].chars().next_back();
        let after = hay[i + needle.len()..].chars().next();
        !before.is_some_and(|c| c.is_ascii_alphanumeric())
            && !after.is_some_and(|c| c.is_ascii_alphanumeric())
    })
}

/// The IRQs of interface `iface`: `/proc/interrupts` lines whose name
/// contains the interface's name or its device's name (`virtio2` for a
/// virtio-net device), and the device's MSI IRQs (`device/msi_irqs`, or the
/// PCI parent's for a virtio device), each with its affinity. Sorted by IRQ.
///
/// # Errors
/// When `/proc/interrupts` or an `msi_irqs` directory exists but cannot be
/// read.
pub fn discover_irqs(root: &Root, iface: &str) -> Result<Vec<IrqFacts>, RootError> {
    let lines = root
        .read("proc/interrupts")?
        .map(|t| parse_interrupts(&t))
        .unwrap_or_default();
    let dev_rel = format!("sys/class/net/{iface}/device");
    let device = root.resolve(&dev_rel)?;
    let dev_name = device
        .as_deref()
        .and_then(|d| d.rsplit('/').next())
        .map(str::to_owned);
    let mut found: BTreeMap<u32, IrqFacts> = BTreeMap::new();
    for l in &lines {
        let by_name = contains_name(&l.name, iface)
            || dev_name
                .as_deref()
                .is_some_and(|d| contains_name(&l.name, d));
        if by_name {
            found.entry(l.irq).or_default().by_name = true;
        }
    }
    let mut msi_dirs = vec![format!("{dev_rel}/msi_irqs")];
    if let (Some(dev), Some(name)) = (&device, &dev_name)
        && name.starts_with("virtio")
        && let Some((parent, _)) = dev.rsplit_once('/')
    {
        msi_dirs.push(format!("{parent}/msi_irqs"));
    }
    for dir in msi_dirs {
        for n in root.list(&dir)?.unwrap_or_default() {
            if let Ok(irq) = n.parse::<u32>() {
                found.entry(irq).or_default().by_msi = true;
            }
        }
    }
    for (irq, f) in &mut found {
        f.irq = *irq;
        if let Some(l) = lines.iter().find(|l| l.irq == *irq) {
            f.name = Some(l.name.clone());
            f.counts = l.counts.clone();
        }
        f.affinity = root.read(&format!("proc/irq/{irq}/smp_affinity_list"))?;
        f.effective_affinity = root.read(&format!("proc/irq/{irq}/effective_affinity_list"))?;
    }
    Ok(found.into_values().collect())
}

/// PIDs of the processes whose `/proc/PID/comm` is `comm`, sorted.
///
/// # Errors
/// When `/proc` cannot be listed.
pub fn find_processes(root: &Root, comm: &str) -> Result<Vec<u32>, RootError> {
    let mut pids = Vec::new();
    for name in root.list("proc")?.unwrap_or_default() {
        let Ok(pid) = name.parse::<u32>() else {
            continue;
        };
        // A process may exit (or be unreadable) meanwhile: not an error.
        if let Ok(Some(c)) = root.read(&format!("proc/{pid}/comm"))
            && c == comm
        {
            pids.push(pid);
        }
    }
    Ok(pids)
}

/// OpenOnload, VMA and XLIO: `onload` in `env.path` (looked up under the
/// root), [`ONLOAD_MODULES`] in `/proc/modules`, `libonload` / `libvma` /
/// `libxlio` in `env.ld_preload` or `/etc/ld.so.preload`.
///
/// # Errors
/// When `/proc/modules` or `/etc/ld.so.preload` exists but cannot be read.
pub fn detect_bypass(root: &Root, env: &ProcessEnv) -> Result<BypassFacts, RootError> {
    let mut b = BypassFacts::default();
    for dir in env.path.as_deref().unwrap_or_default().split(':') {
        // Relative PATH entries depend on the working directory: ignored.
        let Some(rel) = dir.strip_prefix('/') else {
            continue;
        };
        let rel = rel.trim_end_matches('/');
        let cand = if rel.is_empty() {
            "onload".to_owned()
        } else {
            format!("{rel}/onload")
        };
        if root.is_executable(&cand) {
            b.onload_binary = Some(format!("/{cand}"));
            break;
        }
    }
    if let Some(mods) = root.read("proc/modules")? {
        for line in mods.lines() {
            if let Some(m) = line.split_whitespace().next()
                && ONLOAD_MODULES.contains(&m)
            {
                b.modules.push(m.to_owned());
            }
        }
    }
    let mut scan = |list: &str, from: &str| {
        for lib in list.split([' ', ':', '\n', '\t']).filter(|s| !s.is_empty()) {
            let file = lib.rsplit('/').next().unwrap_or(lib);
            let stack = ["onload", "vma", "xlio"]
                .into_iter()
                .find(|s| file.starts_with(&format!("lib{s}")));
            if let Some(stack) = stack {
                b.preloads.push(Preload {
                    library: lib.to_owned(),
                    stack: stack.to_owned(),
                    from: from.to_owned(),
                });
            }
        }
    };
    if let Some(p) = &env.ld_preload {
        scan(p, "LD_PRELOAD");
    }
    if let Some(p) = root.read("etc/ld.so.preload")? {
        scan(&p, "/etc/ld.so.preload");
    }
    let preloaded = |s: &str| b.preloads.iter().any(|p| p.stack == s);
    b.onload = b.onload_binary.is_some() || !b.modules.is_empty() || preloaded("onload");
    b.vma = preloaded("vma");
    b.xlio = preloaded("xlio");
    Ok(b)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn interrupts_parse() {
        let t = "           CPU0       CPU1\n 38:          0       3311 PCI-MSIX-0000:00:03.0   1-edge      virtio2-input.0\nNMI:          0          0   Non-maskable interrupts\n";
        let l = parse_interrupts(t);
        assert_eq!(l.len(), 1);
        assert_eq!(l[0].irq, 38);
        assert_eq!(l[0].counts, vec![0, 3311]);
        assert_eq!(l[0].name, "PCI-MSIX-0000:00:03.0 1-edge virtio2-input.0");
    }

    #[test]
    fn names_match_whole() {
        assert!(contains_name("eth0-TxRx-0", "eth0"));
        assert!(contains_name("i40e-eth0-TxRx-1", "eth0"));
        assert!(contains_name("eth0", "eth0"));
        assert!(!contains_name("veth0", "eth0"));
        assert!(!contains_name("eth01-rx", "eth0"));
        assert!(contains_name("x 1-edge virtio2-input.0", "virtio2"));
        assert!(!contains_name("virtio21-input.0", "virtio2"));
    }

    #[test]
    fn cmdline_parse() {
        let c = CmdlineFacts::parse(
            "BOOT_IMAGE=/vmlinuz isolcpus=managed_irq,domain,2-3 nohz_full=2-3 rcu_nocbs nosoftlockup -- isolcpus=9",
        );
        let iso = c.isolcpus.unwrap();
        assert_eq!(iso.flags, vec!["managed_irq", "domain"]);
        assert_eq!(iso.cpus, Some(vec![2, 3]));
        assert_eq!(c.rcu_nocbs.unwrap().value, "");
        assert_eq!(
            c.latency_params.get("nosoftlockup").map(String::as_str),
            Some("")
        );
    }
}
