//! Run-time CPU isolation with cpusets: where the cpuset controller is
//! ([`detect_cpuset`]), the changes that isolate CPUs
//! ([`plan_cpu_isolation`], returning [`crate::plan::Change`]s for the one
//! apply/revert engine of [`crate::plan`]), and the operations that are
//! more than a value written to a file ([`HostOp`]: a cgroup created, a
//! controller enabled, a process moved), done and undone through
//! [`crate::access::System`].
//!
//! Invariants: planning only reads, through the [`Root`]; every operation
//! has an exact inverse ([`HostOp::undo`]); the cgroups created and the
//! operations made are only those [`crate::scope`] allows.

use std::fmt;

use hftnet_sys::kernel::{KernelVersion, parse_release};
use serde::{Deserialize, Serialize};

use crate::plan::{Change, Target, same_value};
use crate::root::{
    CpuListError, Root, RootError, format_cpu_list, format_cpu_mask, normalize_spaces,
    parse_cpu_list, parse_cpu_mask,
};

const CPU_DIR: &str = "sys/devices/system/cpu";

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
    /// `cgroup.procs` file); undone by writing it to `from`, only while
    /// `pid` is still the same process (same `start_time`) and still in the
    /// cgroup it was moved to. Best effort: processes exit, kernel threads
    /// do not move.
    MoveProcess {
        /// Process ID.
        pid: u32,
        /// The `cgroup.procs` file of the cgroup it was in.
        from: String,
        /// The `cgroup.procs` file of the cgroup it goes to.
        to: String,
        /// Field 22 of `/proc/PID/stat` (clock ticks after boot) when
        /// planned: with the PID, names the process. Absent in snapshots of
        /// older versions: such a process is not moved back.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        start_time: Option<u64>,
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
            HostOp::MoveProcess {
                pid,
                to,
                start_time,
                ..
            } => {
                if start_time.is_some() && process_start_time(root, *pid) != *start_time {
                    // Exited, and the PID may be another process's now.
                    return Err(RootError::Io {
                        action: format!(
                            "moving process {pid} (planned with start time {start_time:?}) to"
                        ),
                        path: to.into(),
                        source: std::io::Error::from_raw_os_error(ESRCH),
                    });
                }
                root.write(to, &pid.to_string())
            }
        }
    }

    /// Undoes the operation: removes a created cgroup (moving any process
    /// still in it to its parent first), disables the controller, moves the
    /// process back (one that has exited is fine). The caller checks that
    /// a directory is the one created ([`crate::scope::check_created_dir`]).
    ///
    /// A process is moved back only while it is the one moved (same PID and
    /// start time) and still in the cgroup it was moved to; otherwise
    /// nothing is written and `Ok(Some(why))` says why it was left alone.
    ///
    /// # Errors
    /// As for [`Root::remove_dir`] and [`Root::write`].
    pub fn undo(&self, root: &Root) -> Result<Option<String>, RootError> {
        match self {
            HostOp::CreateDir { path, .. } => remove_cgroup(root, path).map(|()| None),
            HostOp::EnableController {
                path, controller, ..
            } => root.write(path, &format!("-{controller}")).map(|()| None),
            HostOp::MoveProcess {
                pid,
                from,
                to,
                start_time,
            } => {
                let Some(want) = start_time else {
                    return Ok(Some(format!(
                        "process {pid} left where it is: this snapshot (of an older hftnet) \
                         does not record its start time, so PID {pid} may be another process \
                         by now; move it back by hand (echo {pid} > /{from}) if it is the one"
                    )));
                };
                let Some(now) = process_start_time(root, *pid) else {
                    // The process exited: nothing to move back.
                    return Ok(None);
                };
                if now != *want {
                    return Ok(Some(format!(
                        "process {pid} left where it is: PID {pid} is another process now \
                         (start time {now}, the one moved started at {want}; that one exited)"
                    )));
                }
                let cgroup = to
                    .strip_suffix("/cgroup.procs")
                    .and_then(|d| d.rsplit_once('/'))
                    .map_or("", |(_, name)| name);
                let here = root.read(&format!("proc/{pid}/cpuset"))?;
                if here.as_deref() != Some(&format!("/{cgroup}")) {
                    return Ok(Some(format!(
                        "process {pid} left where it is: it is not in /{cgroup} (now in {}): \
                         the apply never moved it, or someone moved it since",
                        here.as_deref().unwrap_or("an unknown cpuset")
                    )));
                }
                match root.write(from, &pid.to_string()) {
                    // The process exited meanwhile: nothing to move back.
                    Err(e) if e.raw_os_error() == Some(ESRCH) => Ok(None),
                    r => r.map(|()| None),
                }
            }
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
        CpusetMount::V2 { dir } => plan_v2(root, dir, &chosen)?,
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
    let name = crate::scope::V1_ISOLATED;
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
                start_time: process_start_time(root, pid),
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

/// Field 22 (`starttime`, clock ticks after boot) of `/proc/PID/stat`;
/// `None` when the process is gone or the line cannot be read.
#[must_use]
pub fn process_start_time(root: &Root, pid: u32) -> Option<u64> {
    let stat = root.read(&format!("proc/{pid}/stat")).ok()??;
    hftnet_sys::proc::stat_start_time(&stat)
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

fn plan_v2(root: &Root, dir: &str, chosen: &[usize]) -> Result<Isolation, PlanError> {
    let mount = CpusetMount::V2 { dir: dir.into() };
    let available = available_cpus(root, &mount)?;
    check_chosen(&available, chosen)?;
    let name = crate::scope::V2_ISOLATED;
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mount_unescape() {
        assert_eq!(unescape_mount("/a\\040b"), "/a b");
        assert_eq!(unescape_mount("/plain"), "/plain");
    }
}
