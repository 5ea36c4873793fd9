//! What an apply can touch, in one place: the allowlist every [`Target`]
//! of a plan and every entry of a snapshot is checked against before
//! anything is written.
//!
//! A snapshot tells root what to write where, so a hand-made one must not
//! be able to name anything an apply could not have touched. The planner
//! ([`crate::plan::plan`], [`crate::cpuset::plan_cpu_isolation`]) names only:
//!
//! - sysctls: a dotted name of `[A-Za-z0-9_-]` components that exists as
//!   a file under `/proc/sys`, inside the namespaces the profiles tune
//!   ([`SYSCTL_ALLOWED`]: `net.core.*`, `net.ipv4.*`, `net.ipv6.*`, `vm.*`,
//!   `kernel.sched_*`, `kernel.numa_balancing`, `kernel.timer_migration`,
//!   `kernel.watchdog*`, `kernel.nmi_watchdog`, `kernel.soft_watchdog`) and
//!   not one of the security knobs in them ([`SYSCTL_DENIED`]): nothing that
//!   runs a program as root (`kernel.core_pattern`, `kernel.modprobe`, ...)
//!   or weakens the kernel (`vm.mmap_min_addr`, `net.core.bpf_jit_harden`, ...);
//! - files ([`file_kind`]): `proc/irq/N/smp_affinity_list`,
//!   `proc/irq/default_smp_affinity`,
//!   `sys/devices/system/cpu/cpuN/cpufreq/scaling_governor`,
//!   `sys/devices/system/cpu/cpuN/cpuidle/stateK/disable`,
//!   `sys/kernel/mm/transparent_hugepage/{enabled,defrag}`,
//!   `sys/devices/virtual/workqueue/cpumask`, and the cpuset files
//!   (`cpuset.cpus`, `cpuset.mems`, `cpuset.cpu_exclusive`,
//!   `cpuset.cpus.partition`, or `cpus`, `mems`, `cpu_exclusive` on a v1
//!   hierarchy mounted with `noprefix`) of a cgroup below the cpuset
//!   mount;
//! - ethtool settings ([`crate::nic::NicKey`]) of an interface that exists;
//! - the service [`IRQBALANCE`], `active` or `inactive`;
//! - cgroup operations: creating [`V1_ISOLATED`], [`V1_HOUSEKEEPING`] or
//!   [`V2_ISOLATED`] directly under the cpuset mount (a created directory is
//!   only removed again when it is the very directory the apply created:
//!   same device and inode, recorded right after `mkdir`), enabling
//!   `cpuset` in the v2 root's `cgroup.subtree_control`, and moving a
//!   process between the v1 root cpuset and [`V1_HOUSEKEEPING`].
//!
//! Values are one line of at most [`MAX_VALUE`] bytes without NUL.

use crate::cpuset::{CpusetMount, HostOp};
use crate::plan::{Entry, EntryState, Target};
use crate::root::{Root, sysctl_path};

/// The one service an apply stops (and a revert starts again).
pub const IRQBALANCE: &str = "irqbalance";

/// The cgroup v1 cpuset holding the isolated CPUs.
pub const V1_ISOLATED: &str = "hftnet";

/// The cgroup v1 cpuset the other processes are moved to.
pub const V1_HOUSEKEEPING: &str = "hftnet-housekeeping";

/// The cgroup v2 partition holding the isolated CPUs.
pub const V2_ISOLATED: &str = "hftnet.slice";

/// The longest value an entry may hold (CPU masks of 8192 CPUs fit).
pub const MAX_VALUE: usize = 4096;

/// The file of a `proc/irq/N/smp_affinity_list`.
#[must_use]
pub fn irq_affinity(irq: u32) -> String {
    format!("proc/irq/{irq}/smp_affinity_list")
}

/// The default affinity of new interrupts.
pub const IRQ_DEFAULT_AFFINITY: &str = "proc/irq/default_smp_affinity";

/// The CPUs unbound workqueues may run on.
pub const WORKQUEUE_CPUMASK: &str = "sys/devices/virtual/workqueue/cpumask";

/// Transparent huge pages, `enabled`.
pub const THP_ENABLED: &str = "sys/kernel/mm/transparent_hugepage/enabled";

/// Transparent huge pages, `defrag`.
pub const THP_DEFRAG: &str = "sys/kernel/mm/transparent_hugepage/defrag";

/// The cpufreq governor of `cpu`.
#[must_use]
pub fn governor(cpu: usize) -> String {
    format!("sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor")
}

/// The `disable` switch of idle state `state` of `cpu`.
#[must_use]
pub fn cstate_disable(cpu: usize, state: usize) -> String {
    format!("sys/devices/system/cpu/cpu{cpu}/cpuidle/state{state}/disable")
}

/// The files of a cgroup's cpuset an apply writes.
const CPUSET_FILES: &[&str] = &[
    "cpuset.cpus",
    "cpuset.mems",
    "cpuset.cpu_exclusive",
    "cpuset.cpus.partition",
    "cpus",
    "mems",
    "cpu_exclusive",
];

/// The kind of file an apply may write, from its path (relative to the
/// root): which rule of the [module documentation](self) allows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    /// `proc/irq/N/smp_affinity_list`.
    IrqAffinity,
    /// `proc/irq/default_smp_affinity`.
    IrqDefaultAffinity,
    /// `cpuN/cpufreq/scaling_governor`.
    Governor,
    /// `cpuN/cpuidle/stateK/disable`.
    CstateDisable,
    /// `transparent_hugepage/{enabled,defrag}`.
    Thp,
    /// The workqueue CPU mask.
    WorkqueueMask,
    /// A cpuset file of a cgroup below the cpuset mount.
    Cpuset,
}

fn numbered(s: &str, prefix: &str) -> bool {
    s.strip_prefix(prefix)
        .is_some_and(|n| !n.is_empty() && n.len() <= 10 && n.bytes().all(|b| b.is_ascii_digit()))
}

/// Which kind of file `rel` is, or why an apply never writes it. `cpuset`
/// is where the cpuset controller is mounted ([`crate::cpuset::detect_cpuset`]).
///
/// # Errors
/// A sentence saying why the path is not one an apply writes.
pub fn file_kind(rel: &str, cpuset: Option<&CpusetMount>) -> Result<FileKind, String> {
    let parts: Vec<&str> = rel.split('/').collect();
    if rel.is_empty()
        || parts
            .iter()
            .any(|p| p.is_empty() || *p == "." || *p == "..")
    {
        return Err(
            "not a file an apply writes (absolute, or with an empty, `.` or `..` part)".into(),
        );
    }
    let kind = match parts.as_slice() {
        ["proc", "irq", n, "smp_affinity_list"] if numbered(n, "") => Some(FileKind::IrqAffinity),
        ["proc", "irq", "default_smp_affinity"] => Some(FileKind::IrqDefaultAffinity),
        [
            "sys",
            "devices",
            "system",
            "cpu",
            c,
            "cpufreq",
            "scaling_governor",
        ] if numbered(c, "cpu") => Some(FileKind::Governor),
        [
            "sys",
            "devices",
            "system",
            "cpu",
            c,
            "cpuidle",
            s,
            "disable",
        ] if numbered(c, "cpu") && numbered(s, "state") => Some(FileKind::CstateDisable),
        [
            "sys",
            "kernel",
            "mm",
            "transparent_hugepage",
            "enabled" | "defrag",
        ] => Some(FileKind::Thp),
        ["sys", "devices", "virtual", "workqueue", "cpumask"] => Some(FileKind::WorkqueueMask),
        _ => None,
    };
    if let Some(k) = kind {
        return Ok(k);
    }
    let mount = cpuset_dir(cpuset);
    if let Some(dir) = mount
        && let Some(rest) = rel.strip_prefix(dir).and_then(|r| r.strip_prefix('/'))
    {
        let inner: Vec<&str> = rest.split('/').collect();
        if inner.len() >= 2
            && inner.last().is_some_and(|f| CPUSET_FILES.contains(f))
            && inner[..inner.len() - 1].iter().all(|d| !d.starts_with('.'))
        {
            return Ok(FileKind::Cpuset);
        }
    }
    Err(match mount {
        Some(dir) => format!(
            "not a file an apply writes (IRQ affinity, cpufreq, cpuidle, transparent huge \
             pages, workqueue mask, or a cpuset file of a cgroup below /{dir})"
        ),
        None => "not a file an apply writes (IRQ affinity, cpufreq, cpuidle, transparent huge \
                 pages, workqueue mask; no cpuset controller is mounted here)"
            .into(),
    })
}

fn cpuset_dir(cpuset: Option<&CpusetMount>) -> Option<&str> {
    cpuset.map(|m| match m {
        CpusetMount::V1 { dir } | CpusetMount::V2 { dir } => dir.as_str(),
    })
}

/// The sysctls an apply may set: a name ending in `*` is a prefix, any
/// other an exact name. Derived from what the built-in profiles and the
/// audit ([`crate::facts`]) name.
pub const SYSCTL_ALLOWED: &[&str] = &[
    "net.core.*",
    "net.ipv4.*",
    "net.ipv6.*",
    "vm.*",
    "kernel.sched_*",
    "kernel.numa_balancing",
    "kernel.timer_migration",
    "kernel.watchdog*",
    "kernel.nmi_watchdog",
    "kernel.soft_watchdog",
];

/// Sysctls inside [`SYSCTL_ALLOWED`] an apply never sets, with why
/// (a name ending in `*` is a prefix).
pub const SYSCTL_DENIED: &[(&str, &str)] = &[
    (
        "vm.mmap_min_addr",
        "guards against NULL-pointer dereference exploits",
    ),
    ("vm.mmap_rnd_bits", "sets address-space randomisation"),
    (
        "vm.mmap_rnd_compat_bits",
        "sets address-space randomisation",
    ),
    (
        "vm.unprivileged_userfaultfd",
        "opens userfaultfd to unprivileged users",
    ),
    (
        "vm.user_reserve_kbytes",
        "memory kept for root to recover the machine",
    ),
    (
        "vm.admin_reserve_kbytes",
        "memory kept for root to recover the machine",
    ),
    ("net.core.bpf_*", "BPF JIT hardening and limits"),
];

fn sysctl_matches(pattern: &str, name: &str) -> bool {
    match pattern.strip_suffix('*') {
        Some(prefix) => name.starts_with(prefix),
        None => name == pattern,
    }
}

/// Whether an apply may set sysctl `name` (by name only, see
/// [`SYSCTL_ALLOWED`] and [`SYSCTL_DENIED`]); `/` in a name is read as `.`
/// the way `sysctl(8)` does for interface names.
///
/// # Errors
/// A sentence naming the sysctl and why it is refused.
pub fn sysctl_allowed(name: &str) -> Result<(), String> {
    // The namespaces are checked on the dotted form; a `/` only appears
    // inside an interface name (`net.ipv4.conf.eth0/100.rp_filter`).
    let ns = name.split('/').next().unwrap_or(name);
    if let Some((_, why)) = SYSCTL_DENIED.iter().find(|(p, _)| sysctl_matches(p, ns)) {
        return Err(format!(
            "sysctl {name} is a security setting an apply never changes ({why})"
        ));
    }
    if SYSCTL_ALLOWED.iter().any(|p| sysctl_matches(p, ns)) {
        return Ok(());
    }
    Err(format!(
        "sysctl {name} is outside what an apply tunes (only {}); settings such as \
         kernel.core_pattern or kernel.modprobe run programs as root",
        SYSCTL_ALLOWED.join(", ")
    ))
}

/// Checks a sysctl name's shape, that an apply may set it
/// ([`sysctl_allowed`]) and that it exists under `/proc/sys`.
///
/// # Errors
/// Why the name is refused.
pub fn check_sysctl(root: &Root, name: &str) -> Result<(), String> {
    let shape = !name.is_empty()
        && name.len() <= 256
        && name.contains('.')
        && name.split('.').all(|c| {
            !c.is_empty()
                && c.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"_-/".contains(&b))
        })
        && !name.split(['.', '/']).any(|c| c.is_empty() || c == "..");
    if !shape {
        return Err("not a sysctl name (dotted components of letters, digits, `_`, `-`)".into());
    }
    sysctl_allowed(name)?;
    let path = sysctl_path(name).map_err(|e| e.to_string())?;
    let full = root.path(&path).map_err(|e| e.to_string())?;
    match std::fs::symlink_metadata(&full) {
        Ok(m) if m.is_file() => Ok(()),
        Ok(_) => Err(format!("/{path} is not a sysctl file")),
        Err(_) => Err(format!("no such sysctl on this host (no /{path})")),
    }
}

/// Checks a target against the allowlist, reading `root` for the cpuset
/// mount and the sysctls; `iface_exists` says whether an interface exists
/// in the namespace the NIC settings go to. Created directories are
/// checked for their proof by [`check_created_dir`] (that needs the
/// machine); this checks the name only.
///
/// # Errors
/// Why the target is not one an apply touches.
pub fn check_target(
    root: &Root,
    cpuset: Option<&CpusetMount>,
    iface_exists: &dyn Fn(&str) -> bool,
    target: &Target,
) -> Result<(), String> {
    match target {
        Target::Sysctl { name } => check_sysctl(root, name),
        Target::File { path } => file_kind(path, cpuset).map(drop),
        Target::Nic { iface, key } => {
            key.parse::<crate::nic::NicKey>()
                .map_err(|e| format!("not an interface setting an apply changes ({e})"))?;
            let shape = !iface.is_empty()
                && iface.len() < 16
                && !iface.contains(['/', '\0'])
                && !iface.chars().any(char::is_whitespace)
                && iface != "."
                && iface != "..";
            if !shape || !iface_exists(iface) {
                return Err(format!("no interface {iface:?} here"));
            }
            Ok(())
        }
        Target::Service { name } if name == IRQBALANCE => Ok(()),
        Target::Service { name } => Err(format!(
            "service {name:?}: the only service an apply stops is {IRQBALANCE}"
        )),
        Target::HostOp { op } => check_op(cpuset, op),
    }
}

fn check_op(cpuset: Option<&CpusetMount>, op: &HostOp) -> Result<(), String> {
    let none = |what: &str| format!("{what}: no cpuset controller is mounted here");
    match op {
        HostOp::CreateDir { path, .. } => {
            let ok = match cpuset.ok_or_else(|| none("create_dir"))? {
                CpusetMount::V1 { dir } => [V1_ISOLATED, V1_HOUSEKEEPING]
                    .iter()
                    .any(|n| *path == format!("{dir}/{n}")),
                CpusetMount::V2 { dir } => *path == format!("{dir}/{V2_ISOLATED}"),
            };
            if ok {
                Ok(())
            } else {
                Err(format!(
                    "create_dir /{path}: an apply creates only its own cgroups ({V1_ISOLATED}, \
                     {V1_HOUSEKEEPING} or {V2_ISOLATED}) directly below the cpuset mount"
                ))
            }
        }
        HostOp::EnableController {
            path, controller, ..
        } => match cpuset.ok_or_else(|| none("enable_controller"))? {
            CpusetMount::V2 { dir }
                if *path == format!("{dir}/cgroup.subtree_control") && controller == "cpuset" =>
            {
                Ok(())
            }
            _ => Err(format!(
                "enable_controller {controller} in /{path}: an apply only enables cpuset in the \
                 root cgroup.subtree_control of a cgroup v2 cpuset mount"
            )),
        },
        HostOp::MoveProcess { pid, from, to, .. } => {
            match cpuset.ok_or_else(|| none("move_process"))? {
                CpusetMount::V1 { dir }
                    if *pid > 0
                        && *from == format!("{dir}/cgroup.procs")
                        && *to == format!("{dir}/{V1_HOUSEKEEPING}/cgroup.procs") =>
                {
                    Ok(())
                }
                _ => Err(format!(
                    "move_process {pid} from /{from} to /{to}: an apply only moves processes from the \
                 root cpuset of a cgroup v1 mount into its {V1_HOUSEKEEPING} cpuset"
                )),
            }
        }
    }
}

/// Checks a value an entry would write.
///
/// # Errors
/// Why it is refused.
pub fn check_value(target: &Target, value: &str) -> Result<(), String> {
    if value.len() > MAX_VALUE || value.contains(['\n', '\0']) {
        return Err(format!(
            "value {:?}: not one line of at most {MAX_VALUE} bytes",
            value.chars().take(40).collect::<String>()
        ));
    }
    if matches!(target, Target::Service { .. }) && !matches!(value, "active" | "inactive") {
        return Err(format!("value {value:?}: a service is active or inactive"));
    }
    Ok(())
}

/// The checks of an entry that need no machine: its values, and that a
/// created directory the apply finished creating carries its proof.
///
/// # Errors
/// Why it is refused.
pub fn check_entry_shape(e: &Entry) -> Result<(), String> {
    if !matches!(e.target, Target::HostOp { .. }) {
        check_value(&e.target, &e.old)?;
        check_value(&e.target, &e.new)?;
    }
    if let Target::HostOp {
        op: HostOp::CreateDir {
            path,
            created: None,
        },
    } = &e.target
        && matches!(e.state, EntryState::Applied | EntryState::RollbackFailed)
    {
        return Err(format!(
            "create_dir /{path} is recorded as done but without the identity (device, inode) of \
             the directory the apply created"
        ));
    }
    Ok(())
}

/// The identity of a directory: its device and inode numbers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct DirId {
    /// `st_dev`.
    pub dev: u64,
    /// `st_ino`.
    pub ino: u64,
}

/// Checks that a directory to remove is the one the apply created: when
/// it exists, its identity must be `created`; without a recorded identity
/// (an apply stopped between `mkdir` and recording it) only an empty
/// directory is removed, by the caller.
///
/// # Errors
/// Why it is refused.
pub fn check_created_dir(root: &Root, path: &str, created: Option<DirId>) -> Result<(), String> {
    let Some(want) = created else {
        return Ok(());
    };
    match root.dir_id(path) {
        Ok(None) => Ok(()),
        Ok(Some(now)) if now == want => Ok(()),
        Ok(Some(now)) => Err(format!(
            "/{path} is not the directory the apply created (device {} inode {}, the apply \
             recorded device {} inode {})",
            now.dev, now.ino, want.dev, want.ino
        )),
        Err(e) => Err(e.to_string()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctls_an_apply_sets() {
        for ok in [
            "net.core.busy_poll",
            "net.ipv4.tcp_rmem",
            "net.ipv4.conf.eth0/100.rp_filter",
            "vm.swappiness",
            "kernel.sched_rt_runtime_us",
            "kernel.numa_balancing",
            "kernel.timer_migration",
            "kernel.watchdog_thresh",
            "kernel.nmi_watchdog",
        ] {
            assert_eq!(sysctl_allowed(ok), Ok(()), "{ok}");
        }
        for bad in [
            "kernel.core_pattern",
            "kernel.modprobe",
            "kernel.hotplug",
            "kernel.poweroff_cmd",
            "kernel.usermodehelper.bset",
            "kernel.yama.ptrace_scope",
            "kernel.kptr_restrict",
            "kernel.dmesg_restrict",
            "kernel.unprivileged_bpf_disabled",
            "kernel.unprivileged_userns_clone",
            "fs.protected_symlinks",
            "fs.suid_dumpable",
            "vm.mmap_min_addr",
            "vm.unprivileged_userfaultfd",
            "net.core.bpf_jit_harden",
            "kernel.sched2",
            "kernel.nmi_watchdogx",
        ] {
            let why = sysctl_allowed(bad).expect_err(bad);
            assert!(why.contains(bad), "{bad}: {why}");
        }
        // Through check_sysctl too, before the file is looked at.
        let root = Root::at("/nonexistent");
        let why = check_sysctl(&root, "kernel.core_pattern").unwrap_err();
        assert!(
            why.contains("kernel.core_pattern") && why.contains("outside"),
            "{why}"
        );
        let why = check_sysctl(&root, "vm.mmap_min_addr").unwrap_err();
        assert!(why.contains("security"), "{why}");
    }

    #[test]
    fn files_an_apply_writes() {
        let v2 = CpusetMount::V2 {
            dir: "sys/fs/cgroup".into(),
        };
        for ok in [
            irq_affinity(24),
            IRQ_DEFAULT_AFFINITY.into(),
            governor(3),
            cstate_disable(3, 2),
            THP_ENABLED.into(),
            THP_DEFRAG.into(),
            WORKQUEUE_CPUMASK.into(),
            "sys/fs/cgroup/system.slice/cpuset.cpus".into(),
            "sys/fs/cgroup/hftnet.slice/cpuset.cpus.partition".into(),
        ] {
            assert!(file_kind(&ok, Some(&v2)).is_ok(), "{ok}");
        }
        for bad in [
            "tmp/x",
            "/proc/irq/24/smp_affinity_list",
            "proc/irq/24/../../../tmp/x",
            "proc/irq/x/smp_affinity_list",
            "proc/irq/24/smp_affinity",
            "sys/devices/system/cpu/cpu1/cpufreq/scaling_max_freq",
            "sys/fs/cgroup/cpuset.cpus",
            "sys/fs/cgroup/a/cgroup.procs",
            "sys/fs/cgroup/../x/cpuset.cpus",
            "sys/fs/cgroup/./a/cpuset.cpus",
            "sys/fs/cgroupx/a/cpuset.cpus",
            "",
        ] {
            assert!(file_kind(bad, Some(&v2)).is_err(), "{bad}");
        }
        assert!(file_kind("sys/fs/cgroup/a/cpuset.cpus", None).is_err());
    }

    #[test]
    fn host_ops_an_apply_makes() {
        let v1 = CpusetMount::V1 {
            dir: "sys/fs/cgroup/cpuset".into(),
        };
        let v2 = CpusetMount::V2 {
            dir: "sys/fs/cgroup".into(),
        };
        let dir = |p: &str| HostOp::CreateDir {
            path: p.into(),
            created: None,
        };
        assert!(check_op(Some(&v2), &dir("sys/fs/cgroup/hftnet.slice")).is_ok());
        assert!(check_op(Some(&v2), &dir("sys/fs/cgroup/hftnet")).is_err());
        assert!(check_op(Some(&v1), &dir("sys/fs/cgroup/cpuset/hftnet-housekeeping")).is_ok());
        assert!(check_op(Some(&v1), &dir("tmp")).is_err());
        assert!(check_op(None, &dir("sys/fs/cgroup/hftnet.slice")).is_err());
        let mv = |from: &str, to: &str| HostOp::MoveProcess {
            pid: 7,
            from: from.into(),
            to: to.into(),
            start_time: None,
        };
        assert!(
            check_op(
                Some(&v1),
                &mv(
                    "sys/fs/cgroup/cpuset/cgroup.procs",
                    "sys/fs/cgroup/cpuset/hftnet-housekeeping/cgroup.procs"
                )
            )
            .is_ok()
        );
        assert!(check_op(Some(&v1), &mv("tmp/x", "tmp/x")).is_err());
        let en = |path: &str, c: &str| HostOp::EnableController {
            path: path.into(),
            old: String::new(),
            controller: c.into(),
        };
        assert!(
            check_op(
                Some(&v2),
                &en("sys/fs/cgroup/cgroup.subtree_control", "cpuset")
            )
            .is_ok()
        );
        assert!(check_op(Some(&v2), &en("sys/fs/cgroup/cgroup.subtree_control", "io")).is_err());
        assert!(check_op(Some(&v2), &en("tmp/x", "cpuset")).is_err());
    }

    #[test]
    fn values_and_services() {
        let svc = |n: &str| Target::Service { name: n.into() };
        let root = Root::at("/nonexistent");
        let no = |_: &str| false;
        assert!(check_target(&root, None, &no, &svc(IRQBALANCE)).is_ok());
        assert!(check_target(&root, None, &no, &svc("sshd")).is_err());
        assert!(check_value(&svc(IRQBALANCE), "active").is_ok());
        assert!(check_value(&svc(IRQBALANCE), "restart").is_err());
        let f = Target::File {
            path: THP_ENABLED.into(),
        };
        assert!(check_value(&f, "never").is_ok());
        assert!(check_value(&f, "a\nb").is_err());
        assert!(check_value(&f, &"1".repeat(MAX_VALUE + 1)).is_err());
        let nic = |i: &str, k: &str| Target::Nic {
            iface: i.into(),
            key: k.into(),
        };
        let yes = |_: &str| true;
        assert!(check_target(&root, None, &yes, &nic("eth0", "feature.gro")).is_ok());
        assert!(check_target(&root, None, &yes, &nic("eth0", "feature.bogus key")).is_err());
        assert!(check_target(&root, None, &no, &nic("eth0", "feature.gro")).is_err());
        assert!(check_target(&root, None, &yes, &nic("../x", "feature.gro")).is_err());
    }
}
