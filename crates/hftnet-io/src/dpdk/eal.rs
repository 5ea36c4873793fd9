//! The DPDK environment (EAL) of the process: initialised once, on the
//! first `dpdk://` endpoint opened, kept for the life of the process (ports
//! are added and removed by hot-plug), cleaned up at exit.
//!
//! Layer: set-up, never the hot path. Safe code over `hftnet_dpdk_sys`.
//!
//! Invariants: `rte_eal_init` runs at most once per process (a second
//! endpoint asking for other EAL arguments is refused, naming both); no DPDK
//! call is made after `rte_eal_cleanup`, which runs at exit only when no
//! port is open; the runtime directory the EAL creates
//! (`/var/run/dpdk/hftnet-PID`) is removed at exit and when the
//! initialisation fails, and those of dead hftnet processes are removed
//! before an initialisation.
//!
//! Memory: hugepages when hugetlbfs is mounted and has free pages
//! (`--in-memory -m N`: no files), otherwise `--no-huge --no-shconf -m N`
//! (`--no-huge` is refused together with `--in-memory`). The lcore of the
//! initialising thread keeps the thread's CPUs (`--lcores 0@(CPUS)`), one
//! CPU when `cpu=` asked for it.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use hftnet_dpdk_sys as sys;

use crate::error::OpenError;

/// How the EAL got its memory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct EalInfo {
    /// The arguments it was initialised with.
    pub args: Vec<String>,
    /// Hugepages (`true`) or `--no-huge` (anonymous 4 KiB pages).
    pub hugepages: bool,
    /// `-m`: megabytes of memory the EAL reserved.
    pub mem_mb: u32,
    /// The lcore of the initialising thread and its CPUs.
    pub lcores: String,
    /// The DPDK version linked.
    pub version: String,
}

#[derive(Debug)]
enum State {
    Uninit,
    Up {
        info: EalInfo,
        /// The extra `eal=` arguments asked for.
        extra: Vec<String>,
        runtime_dir: PathBuf,
        /// Devices open now, by name.
        devices: Vec<String>,
        /// The PCI bus was left out (`--no-pci`).
        no_pci: bool,
    },
    Failed(String),
    CleanedUp,
}

static EAL: Mutex<State> = Mutex::new(State::Uninit);

fn lock() -> std::sync::MutexGuard<'static, State> {
    EAL.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
}

/// What an endpoint asks of the EAL.
#[derive(Debug, Clone)]
pub(crate) struct EalRequest<'a> {
    pub extra: &'a [String],
    pub cpu: Option<usize>,
    pub mem_mb: u32,
    /// A PCI device to allow (`-a`), for a PCI endpoint.
    pub pci: Option<&'a str>,
}

/// The runtime directory of the EAL with file prefix `prefix`.
fn runtime_dir(prefix: &str) -> PathBuf {
    let base = if hftnet_sys::proc::euid() == 0 {
        PathBuf::from("/var/run/dpdk")
    } else {
        std::env::var_os("XDG_RUNTIME_DIR")
            .map_or_else(|| PathBuf::from("/tmp"), PathBuf::from)
            .join("dpdk")
    };
    base.join(prefix)
}

/// Removes the runtime directory `dir` and its parent when left empty.
fn remove_runtime_dir(dir: &Path) {
    let _ = std::fs::remove_dir_all(dir);
    if let Some(parent) = dir.parent() {
        // Only if empty: other DPDK programs' directories stay.
        let _ = std::fs::remove_dir(parent);
    }
}

/// Removes the runtime directories of hftnet processes that are gone
/// (killed before their exit handler ran).
fn remove_stale_dirs(base: &Path) {
    let Ok(entries) = std::fs::read_dir(base) else {
        return;
    };
    for e in entries.flatten() {
        let name = e.file_name();
        let Some(pid) = name
            .to_str()
            .and_then(|n| n.strip_prefix("hftnet-"))
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if !Path::new(&format!("/proc/{pid}")).exists() {
            let _ = std::fs::remove_dir_all(e.path());
        }
    }
}

/// Free 2 MiB (or default-size) hugepages, when hugetlbfs is mounted.
fn free_hugepages() -> u64 {
    let mounted = std::fs::read_to_string("/proc/mounts")
        .is_ok_and(|m| m.lines().any(|l| l.split(' ').nth(2) == Some("hugetlbfs")));
    if !mounted {
        return 0;
    }
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|m| {
            m.lines()
                .find_map(|l| l.strip_prefix("HugePages_Free:"))
                .and_then(|v| v.trim().parse().ok())
        })
        .unwrap_or(0)
}

fn dpdk_err(problem: String) -> OpenError {
    OpenError::Dpdk { problem }
}

/// The EAL arguments for `req`.
fn eal_args(req: &EalRequest<'_>, prefix: &str) -> Result<(Vec<String>, bool, String), OpenError> {
    let cpus = match req.cpu {
        Some(c) => vec![c],
        None => hftnet_sys::sched::allowed_cpus().map_err(OpenError::setup(
            "reading the thread's CPUs for the EAL's lcore (sched_getaffinity)",
        ))?,
    };
    let list = hftnet_sys::sched::cpu_list_string(&cpus).replace(' ', "");
    let lcores = format!("0@({list})");
    let hugepages = free_hugepages() > 0;
    let mut args: Vec<String> = vec![
        "hftnet".into(),
        "--file-prefix".into(),
        prefix.into(),
        "--lcores".into(),
        lcores.clone(),
        "--no-telemetry".into(),
        "--log-level".into(),
        // Errors and warnings on stderr; the EAL's chatter stays quiet.
        "5".into(),
        "-m".into(),
        req.mem_mb.to_string(),
    ];
    if hugepages {
        args.push("--in-memory".into());
    } else {
        args.extend(["--no-huge".into(), "--no-shconf".into()]);
    }
    match req.pci {
        Some(addr) => args.extend(["-a".into(), addr.into()]),
        None => args.push("--no-pci".into()),
    }
    if let Ok(dir) = std::env::var(super::PMD_DIR_ENV) {
        args.extend(["-d".into(), dir]);
    }
    args.extend(req.extra.iter().cloned());
    Ok((args, hugepages, lcores))
}

/// Initialises the EAL if it is not yet, and registers device `name` as
/// open. Returns how the EAL runs.
///
/// # Errors
/// [`OpenError::Dpdk`]: the EAL is up with other `eal=` arguments (a second
/// initialisation), it failed earlier or was cleaned up, its
/// initialisation fails now (named: no memory, no permission), or device
/// `name` is already open in this process; PCI after a `--no-pci` start.
pub(crate) fn acquire(req: &EalRequest<'_>, name: &str) -> Result<EalInfo, OpenError> {
    let mut st = lock();
    if let State::Uninit = *st {
        let prefix = format!("hftnet-{}", std::process::id());
        let dir = runtime_dir(&prefix);
        if let Some(base) = dir.parent() {
            remove_stale_dirs(base);
        }
        let (args, hugepages, lcores) = eal_args(req, &prefix)?;
        match sys::eal_init(&args) {
            Ok(()) => {
                // Cleaned at exit (and only then: the EAL cannot start again).
                sys::at_exit(cleanup_at_exit);
                *st = State::Up {
                    info: EalInfo {
                        args,
                        hugepages,
                        mem_mb: req.mem_mb,
                        lcores,
                        version: sys::version().trim_start_matches("DPDK ").to_owned(),
                    },
                    extra: req.extra.to_vec(),
                    runtime_dir: dir,
                    devices: Vec::new(),
                    no_pci: req.pci.is_none(),
                };
            }
            Err(e) => {
                remove_runtime_dir(&dir);
                let why = init_failure(&e, &args, hugepages, req.mem_mb);
                *st = State::Failed(why.clone());
                return Err(dpdk_err(why));
            }
        }
    }
    match &mut *st {
        State::Up {
            info,
            extra,
            devices,
            no_pci,
            ..
        } => {
            if extra.as_slice() != req.extra {
                return Err(dpdk_err(format!(
                    "the DPDK EAL of this process is already initialised with eal={:?}; this \
                     endpoint asks for eal={:?}, and rte_eal_init runs once per process: give \
                     every dpdk:// endpoint of one process the same eal= (or none), or open this \
                     one in another process",
                    extra.join("+"),
                    req.extra.join("+")
                )));
            }
            if req.pci.is_some() && *no_pci {
                return Err(dpdk_err(format!(
                    "PCI device {name}: the DPDK EAL of this process started without the PCI bus \
                     (its first endpoint was a virtual device); open PCI devices in their own \
                     process, or first"
                )));
            }
            if devices.iter().any(|d| d == name) {
                return Err(dpdk_err(format!(
                    "DPDK device {name} is busy: it is already open in this process; give the \
                     other endpoint its own device name (e.g. {}) or close the first",
                    next_name(name)
                )));
            }
            devices.push(name.to_owned());
            Ok(info.clone())
        }
        State::Failed(why) => Err(dpdk_err(format!(
            "the DPDK EAL failed to initialise earlier in this process and cannot be retried \
             (rte_eal_init runs once per process): {why}"
        ))),
        State::CleanedUp => Err(dpdk_err(
            "the DPDK EAL of this process was cleaned up (rte_eal_cleanup); nothing of DPDK can \
             run after it in this process"
                .into(),
        )),
        State::Uninit => unreachable!("initialised above"),
    }
}

/// `net_af_packet0` → `net_af_packet1`.
fn next_name(name: &str) -> String {
    let stem = name.trim_end_matches(|c: char| c.is_ascii_digit());
    let n: u32 = name[stem.len()..].parse().unwrap_or(0);
    format!("{stem}{}", n + 1)
}

/// Unregisters device `name` (closed).
pub(crate) fn release(name: &str) {
    if let State::Up { devices, .. } = &mut *lock() {
        devices.retain(|d| d != name);
    }
}

/// The EAL's refusal in words: what was missing and what to do.
fn init_failure(e: &sys::DpdkError, args: &[String], hugepages: bool, mem_mb: u32) -> String {
    let args = args.join(" ");
    match e.errno {
        libc::EACCES | libc::EPERM => format!(
            "the DPDK EAL needs root (or CAP_SYS_ADMIN, CAP_NET_RAW, CAP_IPC_LOCK): {e} \
             (EAL arguments: {args})"
        ),
        libc::ENOMEM if hugepages => format!(
            "the DPDK EAL found too few free hugepages for -m {mem_mb}: {e}; free or add some \
             (echo N > /proc/sys/vm/nr_hugepages) or lower mem= (EAL arguments: {args})"
        ),
        libc::ENOMEM => format!(
            "no hugepages, and no room for the DPDK EAL's -m {mem_mb} MB of ordinary memory: \
             {e}; lower mem= or free memory (EAL arguments: {args})"
        ),
        libc::EALREADY => format!(
            "the DPDK EAL was already initialised in this process by other code: {e}; \
             rte_eal_init runs once per process"
        ),
        _ => format!("the DPDK EAL refused to start: {e} (EAL arguments: {args})"),
    }
}

/// At exit: `rte_eal_cleanup` when no port is open (an open port may be
/// polled by another thread still running; the kernel reclaims the memory
/// then), and the runtime directory removed either way.
extern "C" fn cleanup_at_exit() {
    // Another thread may hold the lock while the process exits: never wait.
    let Ok(mut st) = EAL.try_lock() else {
        return;
    };
    if let State::Up {
        devices,
        runtime_dir,
        ..
    } = &*st
    {
        let dir = runtime_dir.clone();
        if devices.is_empty() {
            let _ = sys::eal_cleanup();
        }
        remove_runtime_dir(&dir);
        *st = State::CleanedUp;
    }
}

/// The EAL's runtime directory, while it is up.
#[must_use]
pub fn runtime_directory() -> Option<PathBuf> {
    match &*lock() {
        State::Up { runtime_dir, .. } => Some(runtime_dir.clone()),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_count_up() {
        assert_eq!(next_name("net_af_packet0"), "net_af_packet1");
        assert_eq!(next_name("net_tap9"), "net_tap10");
        assert_eq!(next_name("net_ring"), "net_ring1");
    }
}
