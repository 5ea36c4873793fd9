//! Host facts and host operations: what the kernel, the CPUs, the sysctls,
//! the IRQs of an interface and the kernel-bypass stacks are set to
//! ([`HostFacts::read`]); run-time CPU isolation with cpusets
//! ([`plan_cpu_isolation`], returning [`crate::plan::Change`]s for the one
//! apply/revert engine of [`crate::plan`]); the operations that are more
//! than a value written ([`HostOp`]); and [`Services`].
//!
//! Invariants:
//! - **Reads never write.** [`HostFacts::read`] and [`plan_cpu_isolation`]
//!   only read through the [`Root`]; a file that does not exist is reported
//!   as absent (`None`, "not present on this kernel"), never as an error, and
//!   a file that cannot be read is listed in [`HostFacts::problems`].
//! - **Every change is (target, old, new)**, applied, recorded and reverted
//!   by [`crate::plan::apply`] and [`crate::plan::revert`]; directories
//!   created (cgroups) are removed on revert, processes moved are moved back.
//! - **Nothing outside the Root.** Every file access goes through
//!   [`crate::root::Root`]; the only other effect is [`Systemctl`], which runs
//!   `systemctl` for the service named by the caller (irqbalance).
//! - Kernel command-line settings are never applied: [`suggest_cmdline`]
//!   returns the parameters to add.

use std::collections::BTreeMap;
use std::fmt;
use std::process::Command;
use std::sync::Mutex;

use hftnet_sys::kernel::{KernelVersion, parse_release};
use serde::{Deserialize, Serialize};

use crate::plan::{Change, Target, same_value};
use crate::root::{
    CpuListError, Root, RootError, bracketed, format_cpu_list, format_cpu_mask, normalize_spaces,
    parse_cpu_list, parse_cpu_mask,
};

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

// ---------------------------------------------------------------------------
// Facts
// ---------------------------------------------------------------------------

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

// ---------------------------------------------------------------------------
// Host operations
// ---------------------------------------------------------------------------

/// A change to the host that is more than a value written to a file: a
/// cgroup created, a controller enabled, a process moved. Planned by
/// [`plan_cpu_isolation`] as a [`crate::plan::Target::HostOp`]; done with
/// [`HostOp::apply`] and undone with [`HostOp::undo`] (through
/// [`crate::access::System`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum HostOp {
    /// Create the directory `path` (a cgroup); undone by moving any process
    /// left in it to its parent and removing it. Files set inside it are
    /// not restored one by one: the directory goes.
    CreateDir {
        /// Directory, relative to the root.
        path: String,
        /// The directory's identity, recorded right after it was created:
        /// revert removes it only while it is still that directory.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        created: Option<crate::scope::DirId>,
    },
    /// Enable `controller` in the cgroup v2 file `path`
    /// (`cgroup.subtree_control`) by writing `+controller`; undone by
    /// writing `-controller`.
    EnableController {
        /// The `cgroup.subtree_control` file.
        path: String,
        /// Its value when planned.
        old: String,
        /// Controller name (`cpuset`).
        controller: String,
    },
    /// Move process `pid` into a cgroup by writing it to `to` (a
    /// `cgroup.procs` file); undone by writing it to `from`. Best effort:
    /// processes exit, kernel threads do not move.
    MoveProcess {
        /// Process ID.
        pid: u32,
        /// The `cgroup.procs` file of the cgroup it was in.
        from: String,
        /// The `cgroup.procs` file of the cgroup it goes to.
        to: String,
    },
}

impl HostOp {
    /// The file or directory changed, relative to the root.
    pub fn path(&self) -> &str {
        match self {
            HostOp::CreateDir { path, .. } | HostOp::EnableController { path, .. } => path,
            HostOp::MoveProcess { to, .. } => to,
        }
    }

    /// What was there before, as text (`"absent"` for a created directory).
    pub fn old_value(&self) -> String {
        match self {
            HostOp::EnableController { old, .. } => old.clone(),
            HostOp::CreateDir { .. } => "absent".into(),
            HostOp::MoveProcess { pid, from, .. } => format!("{pid} in {from}"),
        }
    }

    /// What is there after, as text.
    pub fn new_value(&self) -> String {
        match self {
            HostOp::CreateDir { .. } => "directory".into(),
            HostOp::EnableController {
                old, controller, ..
            } => normalize_spaces(&format!("{old} +{controller}")),
            HostOp::MoveProcess { pid, .. } => pid.to_string(),
        }
    }

    /// Does the operation.
    ///
    /// # Errors
    /// As for [`Root::create_dir`] and [`Root::write`].
    pub fn apply(&self, root: &Root) -> Result<(), RootError> {
        match self {
            HostOp::CreateDir { path, .. } => root.create_dir(path),
            HostOp::EnableController {
                path, controller, ..
            } => root.write(path, &format!("+{controller}")),
            HostOp::MoveProcess { pid, to, .. } => root.write(to, &pid.to_string()),
        }
    }

    /// Undoes the operation: removes a created cgroup (moving any process
    /// still in it to its parent first), disables the controller, moves the
    /// process back (one that has exited is fine). The caller checks that
    /// a directory is the one created ([`crate::scope::check_created_dir`]).
    ///
    /// # Errors
    /// As for [`Root::remove_dir`] and [`Root::write`].
    pub fn undo(&self, root: &Root) -> Result<(), RootError> {
        match self {
            HostOp::CreateDir { path, .. } => remove_cgroup(root, path),
            HostOp::EnableController {
                path, controller, ..
            } => root.write(path, &format!("-{controller}")),
            HostOp::MoveProcess { pid, from, .. } => match root.write(from, &pid.to_string()) {
                // The process exited: nothing to move back.
                Err(e) if e.raw_os_error() == Some(ESRCH) => Ok(()),
                r => r,
            },
        }
    }
}

impl fmt::Display for HostOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{}: {:?} -> {:?}",
            self.path(),
            self.old_value(),
            self.new_value()
        )
    }
}

const ESRCH: i32 = 3;

fn remove_cgroup(root: &Root, dir: &str) -> Result<(), RootError> {
    if let Some((parent, _)) = dir.rsplit_once('/') {
        let procs = root
            .read(&format!("{dir}/cgroup.procs"))?
            .unwrap_or_default();
        for pid in procs.split_whitespace() {
            match root.write(&format!("{parent}/cgroup.procs"), pid) {
                Err(e) if e.raw_os_error() != Some(ESRCH) => return Err(e),
                _ => {}
            }
        }
    }
    root.remove_dir(dir)
}

/// A write of `new` over `old` to the file `path` (relative to the root),
/// stopping the apply when it fails.
fn file(path: impl Into<String>, old: impl Into<String>, new: impl Into<String>) -> Change {
    Change {
        target: Target::File { path: path.into() },
        old: old.into(),
        new: new.into(),
        why: String::new(),
        best_effort: false,
    }
}

/// A write whose failure is reported and skipped (IRQs the kernel will not
/// move, for example).
fn best(path: impl Into<String>, old: impl Into<String>, new: impl Into<String>) -> Change {
    Change {
        best_effort: true,
        ..file(path, old, new)
    }
}

fn op(op: HostOp) -> Change {
    Change {
        old: op.old_value(),
        new: op.new_value(),
        why: String::new(),
        best_effort: matches!(op, HostOp::MoveProcess { .. }),
        target: Target::HostOp { op },
    }
}

/// What [`plan_cpu_isolation`] proposes: the changes, in the order to
/// apply them, and notes on what was left alone and why.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Isolation {
    /// The changes, in order.
    pub changes: Vec<Change>,
    /// What was left alone and why.
    pub notes: Vec<String>,
}

// ---------------------------------------------------------------------------
// Planning
// ---------------------------------------------------------------------------

/// Why a plan could not be made.
#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    /// Reading a file failed.
    #[error(transparent)]
    Root(#[from] RootError),
    /// A file held a CPU list that did not parse.
    #[error("{path}: {source}")]
    CpuList {
        /// File, relative to the root.
        path: String,
        /// The parse error.
        source: CpuListError,
    },
    /// No CPUs were given.
    #[error("no CPUs given")]
    NoCpus,
    /// Some CPUs asked for are not available (offline or outside the root
    /// cpuset).
    #[error("CPU(s) {wanted} not available (available: {available})")]
    CpusNotAvailable {
        /// The CPUs missing, as a CPU list.
        wanted: String,
        /// The CPUs available, as a CPU list.
        available: String,
    },
    /// Isolating these CPUs would leave none for the rest of the system.
    #[error("isolating CPU(s) {0} leaves no CPU for the rest of the system")]
    NoHousekeeping(String),
    /// No cpuset controller is mounted (neither v1 nor v2).
    #[error(
        "no cpuset controller mounted (cgroup v1 `cpuset` or cgroup v2 with `cpuset` in cgroup.controllers)"
    )]
    NoCpuset,
    /// Reducing a cgroup to exclude the CPUs would leave it with none.
    #[error("{path}: would be left with no CPU after excluding {cpus}")]
    WouldEmpty {
        /// The cgroup directory.
        path: String,
        /// The CPUs excluded.
        cpus: String,
    },
}

fn read_cpu_list(root: &Root, rel: &str) -> Result<Option<Vec<usize>>, PlanError> {
    match root.read(rel)? {
        None => Ok(None),
        Some(v) => parse_cpu_list(&v)
            .map(Some)
            .map_err(|source| PlanError::CpuList {
                path: rel.to_owned(),
                source,
            }),
    }
}

fn minus(a: &[usize], b: &[usize]) -> Vec<usize> {
    a.iter().copied().filter(|c| !b.contains(c)).collect()
}

fn intersects(a: &[usize], b: &[usize]) -> bool {
    a.iter().any(|c| b.contains(c))
}

/// Moves every IRQ off `cpus`: each `/proc/irq/N/smp_affinity_list` that
/// includes one of them loses them (or becomes `housekeeping` when nothing
/// would be left), and `/proc/irq/default_smp_affinity` excludes them. All
/// best effort: the kernel refuses to move some IRQs (per-CPU, managed).
///
/// # Errors
/// A read error, or a file holding a malformed CPU list.
fn plan_irqs_away(
    root: &Root,
    cpus: &[usize],
    housekeeping: &[usize],
) -> Result<Isolation, PlanError> {
    let mut plan = Isolation::default();
    for name in root.list("proc/irq")?.unwrap_or_default() {
        if name.parse::<u32>().is_err() {
            continue;
        }
        let path = format!("proc/irq/{name}/smp_affinity_list");
        let Some(old) = read_cpu_list(root, &path)? else {
            continue;
        };
        if !intersects(&old, cpus) {
            continue;
        }
        let mut new = minus(&old, cpus);
        if new.is_empty() {
            new = housekeeping.to_vec();
        }
        plan.changes
            .push(best(path, format_cpu_list(&old), format_cpu_list(&new)));
    }
    let path = "proc/irq/default_smp_affinity";
    if let Some(old) = root.read(path)? {
        let cur = parse_cpu_mask(&old).map_err(|source| PlanError::CpuList {
            path: path.to_owned(),
            source,
        })?;
        if intersects(&cur, cpus) {
            let mut new = minus(&cur, cpus);
            if new.is_empty() {
                new = housekeeping.to_vec();
            }
            let new = format_cpu_mask(&new, &old);
            plan.changes.push(best(path, old, new));
        }
    }
    Ok(plan)
}

/// Where the cpuset controller is mounted.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "version", rename_all = "snake_case")]
pub enum CpusetMount {
    /// cgroup v1 `cpuset` hierarchy (`/sys/fs/cgroup/cpuset`).
    V1 {
        /// Mount point, relative to the root.
        dir: String,
    },
    /// cgroup v2 with `cpuset` in `cgroup.controllers`.
    V2 {
        /// Mount point, relative to the root.
        dir: String,
    },
}

/// Finds the cpuset controller from `/proc/mounts` (a v1 `cpuset`
/// hierarchy first, since a controller bound to v1 is not available in v2),
/// or, without `/proc/mounts`, at the usual places.
///
/// # Errors
/// Read errors.
pub fn detect_cpuset(root: &Root) -> Result<Option<CpusetMount>, RootError> {
    let v2_has_cpuset = |dir: &str| -> Result<bool, RootError> {
        Ok(root
            .read(&format!("{dir}/cgroup.controllers"))?
            .is_some_and(|c| c.split_whitespace().any(|w| w == "cpuset")))
    };
    if let Some(mounts) = root.read("proc/mounts")? {
        let mut v2 = Vec::new();
        for line in mounts.lines() {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() < 4 {
                continue;
            }
            let dir = unescape_mount(f[1]).trim_start_matches('/').to_owned();
            if dir.is_empty() {
                continue;
            }
            if f[2] == "cgroup" && f[3].split(',').any(|o| o == "cpuset") {
                return Ok(Some(CpusetMount::V1 { dir }));
            }
            if f[2] == "cgroup2" {
                v2.push(dir);
            }
        }
        for dir in v2 {
            if v2_has_cpuset(&dir)? {
                return Ok(Some(CpusetMount::V2 { dir }));
            }
        }
        return Ok(None);
    }
    if root.exists("sys/fs/cgroup/cpuset/cpuset.cpus") {
        return Ok(Some(CpusetMount::V1 {
            dir: "sys/fs/cgroup/cpuset".into(),
        }));
    }
    if v2_has_cpuset("sys/fs/cgroup")? {
        return Ok(Some(CpusetMount::V2 {
            dir: "sys/fs/cgroup".into(),
        }));
    }
    Ok(None)
}

/// `/proc/mounts` escapes space, tab, newline and backslash as `\ooo`.
fn unescape_mount(s: &str) -> String {
    let b = s.as_bytes();
    let mut out = Vec::with_capacity(b.len());
    let mut i = 0;
    while i < b.len() {
        if b[i] == b'\\'
            && i + 3 < b.len()
            && b[i + 1..i + 4].iter().all(|c| (b'0'..=b'7').contains(c))
        {
            out.push((b[i + 1] - b'0') * 64 + (b[i + 2] - b'0') * 8 + (b[i + 3] - b'0'));
            i += 4;
        } else {
            out.push(b[i]);
            i += 1;
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

/// Options of [`plan_cpu_isolation`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct IsolationOptions {
    /// Name of the cgroup holding the isolated CPUs; `None`: `hftnet` on v1,
    /// `hftnet.slice` on v2.
    pub name: Option<String>,
    /// cgroup v1 only: create a `hftnet-housekeeping` cpuset with the other
    /// CPUs and move every process of the root cpuset (kernel threads
    /// excepted) into it. Without this, v1 isolation only reduces existing
    /// top-level cpusets, and processes in the root cpuset (all of them, on
    /// most hosts) may still run on the isolated CPUs. (On v2 the partition
    /// takes the CPUs away from the root cgroup itself.)
    pub move_processes: bool,
    /// Also move IRQs (and `default_smp_affinity`) off the CPUs
    /// (every `/proc/irq/N/smp_affinity_list`, best effort), and unbound workqueues
    /// (`/sys/devices/virtual/workqueue/cpumask`).
    pub move_irqs: bool,
}

impl Default for IsolationOptions {
    fn default() -> Self {
        IsolationOptions {
            name: None,
            move_processes: true,
            move_irqs: true,
        }
    }
}

pub use crate::scope::V1_HOUSEKEEPING;

/// Run-time CPU isolation with cpusets. On cgroup v2: enable `cpuset` in the
/// root's `cgroup.subtree_control` if needed, restrict every other top-level
/// cgroup's `cpuset.cpus` to the remaining CPUs, create `hftnet.slice` with
/// the chosen CPUs and make it an `isolated` partition (kernel ≥ 6.1; `root`
/// on 5.2–6.0). On cgroup v1: reduce the other top-level cpusets (and their
/// descendants, deepest first), create `hftnet` with the chosen CPUs and
/// `cpu_exclusive`, and optionally move the root cpuset's processes into a
/// housekeeping cpuset. Then, optionally, IRQs and unbound workqueues off
/// the CPUs.
///
/// The program to isolate joins the cgroup by writing its PID to
/// `DIR/NAME/cgroup.procs` (the first [`HostOp::CreateDir`] of the plan).
///
/// # Errors
/// [`PlanError::NoCpus`], [`PlanError::NoCpuset`],
/// [`PlanError::CpusNotAvailable`], [`PlanError::NoHousekeeping`],
/// [`PlanError::WouldEmpty`] when a cpuset would lose all its CPUs, or a
/// read error.
pub fn plan_cpu_isolation(
    root: &Root,
    cpus: &[usize],
    opts: &IsolationOptions,
) -> Result<Isolation, PlanError> {
    let mut chosen = cpus.to_vec();
    chosen.sort_unstable();
    chosen.dedup();
    if chosen.is_empty() {
        return Err(PlanError::NoCpus);
    }
    let mount = detect_cpuset(root)?.ok_or(PlanError::NoCpuset)?;
    let mut plan = match &mount {
        CpusetMount::V1 { dir } => plan_v1(root, dir, &chosen, opts)?,
        CpusetMount::V2 { dir } => plan_v2(root, dir, &chosen, opts)?,
    };
    if opts.move_irqs {
        let available = available_cpus(root, &mount)?;
        let housekeeping = minus(&available, &chosen);
        let away = plan_irqs_away(root, &chosen, &housekeeping)?;
        plan.changes.extend(away.changes);
        plan.notes.extend(away.notes);
        let wq = "sys/devices/virtual/workqueue/cpumask";
        if let Some(old) = root.read(wq)? {
            let cur = parse_cpu_mask(&old).map_err(|source| PlanError::CpuList {
                path: wq.to_owned(),
                source,
            })?;
            if intersects(&cur, &chosen) {
                let new = format_cpu_mask(&minus(&cur, &chosen), &old);
                plan.changes.push(best(wq, old, new));
            }
        }
    }
    Ok(plan)
}

fn available_cpus(root: &Root, mount: &CpusetMount) -> Result<Vec<usize>, PlanError> {
    let candidates = match mount {
        CpusetMount::V1 { dir } => vec![
            format!("{dir}/cpuset.effective_cpus"),
            format!("{dir}/cpuset.cpus"),
            format!("{dir}/cpus"),
        ],
        CpusetMount::V2 { dir } => vec![format!("{dir}/cpuset.cpus.effective")],
    };
    for c in candidates
        .iter()
        .map(String::as_str)
        .chain([format!("{CPU_DIR}/online").as_str()])
    {
        if let Some(v) = read_cpu_list(root, c)? {
            return Ok(v);
        }
    }
    Ok(Vec::new())
}

fn check_chosen(available: &[usize], chosen: &[usize]) -> Result<Vec<usize>, PlanError> {
    let missing = minus(chosen, available);
    if !missing.is_empty() {
        return Err(PlanError::CpusNotAvailable {
            wanted: format_cpu_list(&missing),
            available: format_cpu_list(available),
        });
    }
    let housekeeping = minus(available, chosen);
    if housekeeping.is_empty() {
        return Err(PlanError::NoHousekeeping(format_cpu_list(chosen)));
    }
    Ok(housekeeping)
}

fn child_dirs(root: &Root, dir: &str) -> Result<Vec<String>, RootError> {
    Ok(root
        .list(dir)?
        .unwrap_or_default()
        .into_iter()
        .filter(|n| root.is_dir(&format!("{dir}/{n}")))
        .collect())
}

fn plan_v1(
    root: &Root,
    dir: &str,
    chosen: &[usize],
    opts: &IsolationOptions,
) -> Result<Isolation, PlanError> {
    // Mounted with `noprefix` (old setups), the files are `cpus`, `mems`.
    let pre = if root.exists(&format!("{dir}/cpuset.cpus")) {
        "cpuset."
    } else {
        ""
    };
    let available = available_cpus(root, &CpusetMount::V1 { dir: dir.into() })?;
    let housekeeping = check_chosen(&available, chosen)?;
    let name = opts.name.as_deref().unwrap_or(crate::scope::V1_ISOLATED);
    let ours = [name, V1_HOUSEKEEPING];
    let mems = root.read(&format!("{dir}/{pre}mems"))?.unwrap_or_default();
    let mut plan = Isolation::default();
    // Descendants first: a v1 cpuset must stay a subset of its parent.
    fn reduce(
        root: &Root,
        cg: &str,
        pre: &str,
        chosen: &[usize],
        plan: &mut Isolation,
    ) -> Result<(), PlanError> {
        for child in child_dirs(root, cg)? {
            reduce(root, &format!("{cg}/{child}"), pre, chosen, plan)?;
        }
        let path = format!("{cg}/{pre}cpus");
        let Some(cur) = read_cpu_list(root, &path)? else {
            return Ok(());
        };
        if intersects(&cur, chosen) {
            let new = minus(&cur, chosen);
            if new.is_empty() {
                return Err(PlanError::WouldEmpty {
                    path: cg.to_owned(),
                    cpus: format_cpu_list(chosen),
                });
            }
            plan.changes
                .push(file(path, format_cpu_list(&cur), format_cpu_list(&new)));
        }
        Ok(())
    }
    for child in child_dirs(root, dir)? {
        if !ours.contains(&child.as_str()) {
            reduce(root, &format!("{dir}/{child}"), pre, chosen, &mut plan)?;
        }
    }
    let mut make = |name: &str, cpus: &[usize], exclusive: bool| -> Result<(), PlanError> {
        let cg = format!("{dir}/{name}");
        if root.exists(&cg) {
            // Left from an earlier run: reuse it, values recorded as found.
            for (name, new) in [("mems", mems.clone()), ("cpus", format_cpu_list(cpus))] {
                let path = format!("{cg}/{pre}{name}");
                let old = root.read(&path)?.unwrap_or_default();
                if !same_value(&old, &new) {
                    plan.changes.push(file(path, old, new));
                }
            }
        } else {
            plan.changes.push(op(HostOp::CreateDir {
                path: cg.clone(),
                created: None,
            }));
            plan.changes
                .push(file(format!("{cg}/{pre}mems"), "", mems.clone()));
            plan.changes
                .push(file(format!("{cg}/{pre}cpus"), "", format_cpu_list(cpus)));
        }
        if exclusive {
            let path = format!("{cg}/{pre}cpu_exclusive");
            let old = root.read(&path)?.unwrap_or_else(|| "0".into());
            if old != "1" {
                plan.changes.push(file(path, old, "1"));
            }
        }
        Ok(())
    };
    if opts.move_processes {
        make(V1_HOUSEKEEPING, &housekeeping, false)?;
    }
    make(name, chosen, true)?;
    if opts.move_processes {
        let from = format!("{dir}/cgroup.procs");
        let to = format!("{dir}/{V1_HOUSEKEEPING}/cgroup.procs");
        let procs = root.read(&from)?.unwrap_or_default();
        for pid in procs
            .split_whitespace()
            .filter_map(|p| p.parse::<u32>().ok())
        {
            if is_kernel_thread(root, pid) {
                continue;
            }
            plan.changes.push(op(HostOp::MoveProcess {
                pid,
                from: from.clone(),
                to: to.clone(),
            }));
        }
    } else {
        plan.notes.push(format!(
            "processes in the root cpuset {dir} may still run on CPU(s) {}",
            format_cpu_list(chosen)
        ));
    }
    Ok(plan)
}

/// `PF_KTHREAD` in field 9 (`flags`) of `/proc/PID/stat`. Unreadable
/// (exited) counts as a kernel thread, so it is left alone.
fn is_kernel_thread(root: &Root, pid: u32) -> bool {
    const PF_KTHREAD: u64 = 0x0020_0000;
    let Ok(Some(stat)) = root.read(&format!("proc/{pid}/stat")) else {
        return true;
    };
    // Fields after the command name (which may contain spaces and parens):
    // state ppid pgrp session tty_nr tpgid flags ...
    stat.rsplit_once(')')
        .and_then(|(_, rest)| rest.split_whitespace().nth(6)?.parse::<u64>().ok())
        .is_none_or(|flags| flags & PF_KTHREAD != 0)
}

/// The version in `kernel.osrelease`, read through `root` (so tests can fake
/// it) and parsed by [`hftnet_sys::kernel::parse_release`]; `None` if the file
/// is absent or not a version.
fn kernel_version(root: &Root) -> Result<Option<KernelVersion>, RootError> {
    Ok(root
        .read("proc/sys/kernel/osrelease")?
        .and_then(|r| parse_release(&r)))
}

fn plan_v2(
    root: &Root,
    dir: &str,
    chosen: &[usize],
    opts: &IsolationOptions,
) -> Result<Isolation, PlanError> {
    let mount = CpusetMount::V2 { dir: dir.into() };
    let available = available_cpus(root, &mount)?;
    check_chosen(&available, chosen)?;
    let name = opts.name.as_deref().unwrap_or(crate::scope::V2_ISOLATED);
    let mut plan = Isolation::default();
    let subtree_path = format!("{dir}/cgroup.subtree_control");
    let subtree = root.read(&subtree_path)?.unwrap_or_default();
    if !subtree.split_whitespace().any(|c| c == "cpuset") {
        plan.changes.push(op(HostOp::EnableController {
            path: subtree_path,
            old: subtree,
            controller: "cpuset".into(),
        }));
    }
    for child in child_dirs(root, dir)? {
        if child == name {
            continue;
        }
        let path = format!("{dir}/{child}/cpuset.cpus");
        // Before the controller is enabled the file is absent; once enabled
        // it starts empty (= the parent's CPUs).
        let old = root.read(&path)?.unwrap_or_default();
        let cur = if old.is_empty() {
            available.clone()
        } else {
            parse_cpu_list(&old).map_err(|source| PlanError::CpuList {
                path: path.clone(),
                source,
            })?
        };
        if intersects(&cur, chosen) {
            let new = minus(&cur, chosen);
            if new.is_empty() {
                return Err(PlanError::WouldEmpty {
                    path: format!("{dir}/{child}"),
                    cpus: format_cpu_list(chosen),
                });
            }
            plan.changes.push(file(path, old, format_cpu_list(&new)));
        }
    }
    let cg = format!("{dir}/{name}");
    let partition = match kernel_version(root)? {
        Some(v) if v.at_least(6, 1) => Some("isolated"),
        Some(v) if v.at_least(5, 2) => Some("root"),
        _ => None,
    };
    let cpus_path = format!("{cg}/cpuset.cpus");
    let part_path = format!("{cg}/cpuset.cpus.partition");
    if root.exists(&cg) {
        let old = root.read(&cpus_path)?.unwrap_or_default();
        if !same_value(&old, &format_cpu_list(chosen)) {
            plan.changes
                .push(file(cpus_path, old, format_cpu_list(chosen)));
        }
        if let (Some(p), Some(old)) = (partition, root.read(&part_path)?)
            && old != p
        {
            plan.changes.push(file(part_path, old, p));
        }
    } else {
        plan.changes.push(op(HostOp::CreateDir {
            path: cg.clone(),
            created: None,
        }));
        plan.changes
            .push(file(cpus_path, "", format_cpu_list(chosen)));
        if let Some(p) = partition {
            plan.changes.push(file(part_path, "member", p));
        }
    }
    if partition.is_none() {
        plan.notes.push(format!(
            "kernel too old for cpuset partitions: processes in the root cgroup may still run on CPU(s) {}",
            format_cpu_list(chosen)
        ));
    }
    Ok(plan)
}

/// The kernel command-line parameters to add for boot-time isolation of
/// `isolated` (housekeeping = `online` minus `isolated`), leaving out those
/// `current` (`/proc/cmdline`) already has with the same CPUs. Never applied:
/// the caller prints it for the user's boot loader.
pub fn suggest_cmdline(current: &str, isolated: &[usize], online: &[usize]) -> Vec<String> {
    let facts = CmdlineFacts::parse(current);
    let iso = format_cpu_list(isolated);
    let housekeeping = format_cpu_list(&minus(online, isolated));
    let has = |p: &Option<CpuParam>, want: &[usize]| {
        p.as_ref().and_then(|p| p.cpus.as_ref()).is_some_and(|c| {
            let mut w = want.to_vec();
            w.sort_unstable();
            w.dedup();
            *c == w
        })
    };
    let mut out = Vec::new();
    if isolated.is_empty() {
        return out;
    }
    if !has(&facts.isolcpus, isolated) {
        out.push(format!("isolcpus=managed_irq,domain,{iso}"));
    }
    if !has(&facts.nohz_full, isolated) {
        out.push(format!("nohz_full={iso}"));
    }
    if !has(&facts.rcu_nocbs, isolated) {
        out.push(format!("rcu_nocbs={iso}"));
    }
    if !housekeeping.is_empty() && !has(&facts.irqaffinity, &minus(online, isolated)) {
        out.push(format!("irqaffinity={housekeeping}"));
    }
    out
}

// ---------------------------------------------------------------------------
// Services
// ---------------------------------------------------------------------------

/// Why a service could not be queried, stopped or started.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// `systemctl` is not installed.
    #[error("`systemctl` not found: cannot manage service `{0}` (stop it by hand)")]
    NoSystemctl(String),
    /// `systemctl` ran and failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        /// The command line.
        command: String,
        /// Exit status.
        status: String,
        /// Its standard error.
        stderr: String,
    },
    /// `systemctl` could not be started.
    #[error("running `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// The error.
        source: std::io::Error,
    },
}

/// A service manager, small enough for tests to fake ([`FakeServices`]).
pub trait Services {
    /// Whether service `name` is active (running).
    ///
    /// # Errors
    /// When the service manager cannot be asked.
    fn is_active(&self, name: &str) -> Result<bool, ServiceError>;
    /// Stops service `name`.
    ///
    /// # Errors
    /// When the service manager fails.
    fn stop(&self, name: &str) -> Result<(), ServiceError>;
    /// Starts service `name`.
    ///
    /// # Errors
    /// When the service manager fails.
    fn start(&self, name: &str) -> Result<(), ServiceError>;
}

/// [`Services`] through `systemctl`.
#[derive(Debug, Clone)]
pub struct Systemctl {
    program: String,
}

impl Default for Systemctl {
    fn default() -> Self {
        Systemctl {
            program: "systemctl".into(),
        }
    }
}

impl Systemctl {
    /// `systemctl` found in `PATH`.
    pub fn new() -> Systemctl {
        Systemctl::default()
    }

    fn run(&self, args: &[&str], name: &str) -> Result<std::process::Output, ServiceError> {
        let command = format!("{} {}", self.program, args.join(" "));
        Command::new(&self.program)
            .args(args)
            .output()
            .map_err(|source| {
                if source.kind() == std::io::ErrorKind::NotFound {
                    ServiceError::NoSystemctl(name.to_owned())
                } else {
                    ServiceError::Spawn { command, source }
                }
            })
    }

    fn checked(&self, args: &[&str], name: &str) -> Result<(), ServiceError> {
        let out = self.run(args, name)?;
        if out.status.success() {
            Ok(())
        } else {
            Err(ServiceError::Failed {
                command: format!("{} {}", self.program, args.join(" ")),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            })
        }
    }
}

impl Services for Systemctl {
    fn is_active(&self, name: &str) -> Result<bool, ServiceError> {
        let out = self.run(&["is-active", name], name)?;
        let state = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        match state.as_str() {
            "active" | "reloading" | "activating" | "refreshing" => Ok(true),
            "inactive" | "failed" | "deactivating" | "unknown" | "maintenance" => Ok(false),
            // No unit state printed: systemd is not running (containers,
            // minimal VMs) or the bus is unreachable.
            _ => Err(ServiceError::Failed {
                command: format!("{} is-active {name}", self.program),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            }),
        }
    }

    fn stop(&self, name: &str) -> Result<(), ServiceError> {
        self.checked(&["stop", name], name)
    }

    fn start(&self, name: &str) -> Result<(), ServiceError> {
        self.checked(&["start", name], name)
    }
}

/// An in-memory [`Services`] for tests: services and whether they are
/// active, and a log of calls (`"stop irqbalance"`).
#[derive(Debug, Default)]
pub struct FakeServices {
    active: Mutex<BTreeMap<String, bool>>,
    calls: Mutex<Vec<String>>,
}

impl FakeServices {
    /// Known services and whether each is active; others are unknown
    /// (inactive, and `stop`/`start` fail).
    pub fn new(services: &[(&str, bool)]) -> FakeServices {
        FakeServices {
            active: Mutex::new(
                services
                    .iter()
                    .map(|(n, a)| ((*n).to_owned(), *a))
                    .collect(),
            ),
            calls: Mutex::new(Vec::new()),
        }
    }

    /// The calls made so far.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn set(&self, verb: &str, name: &str, active: bool) -> Result<(), ServiceError> {
        if let Ok(mut c) = self.calls.lock() {
            c.push(format!("{verb} {name}"));
        }
        let mut map = self.active.lock().unwrap_or_else(|p| p.into_inner());
        match map.get_mut(name) {
            Some(a) => {
                *a = active;
                Ok(())
            }
            None => Err(ServiceError::Failed {
                command: format!("systemctl {verb} {name}"),
                status: "exit status: 5".into(),
                stderr: format!("Unit {name}.service not loaded."),
            }),
        }
    }
}

impl Services for FakeServices {
    fn is_active(&self, name: &str) -> Result<bool, ServiceError> {
        if let Ok(mut c) = self.calls.lock() {
            c.push(format!("is-active {name}"));
        }
        let map = self.active.lock().unwrap_or_else(|p| p.into_inner());
        Ok(map.get(name).copied().unwrap_or(false))
    }

    fn stop(&self, name: &str) -> Result<(), ServiceError> {
        self.set("stop", name, false)
    }

    fn start(&self, name: &str) -> Result<(), ServiceError> {
        self.set("start", name, true)
    }
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

    #[test]
    fn cmdline_suggestion() {
        assert_eq!(
            suggest_cmdline("quiet nohz_full=2-3", &[2, 3], &[0, 1, 2, 3]),
            vec![
                "isolcpus=managed_irq,domain,2-3",
                "rcu_nocbs=2-3",
                "irqaffinity=0-1"
            ]
        );
    }

    #[test]
    fn mount_unescape() {
        assert_eq!(unescape_mount("/a\\040b"), "/a b");
        assert_eq!(unescape_mount("/plain"), "/plain");
    }
}
