//! From a profile to changes, and changes applied and reverted with a
//! snapshot.
//!
//! Every value the tuner can touch is a [`Target`] read and written as text
//! through an [`Access`] (the real machine, or a fake in tests). The planner
//! ([`plan`]) compares what a [`Profile`] wants with what is there and
//! returns a [`Plan`] of changes, old → new, without writing anything.
//! [`apply`] first writes a [`Snapshot`] of every value it is about to
//! touch, then applies the changes in order, reading each back; a failure
//! that is not the device refusing a value rolls back what was already
//! changed. [`revert`] restores a snapshot exactly, is idempotent, and
//! refuses to overwrite a value someone else changed since, unless forced.

use std::fmt;
use std::io::Write as _;
use std::path::Path;

use serde::{Deserialize, Serialize};

use crate::profile::{Profile, Want};

/// One value the tuner reads and writes, as text.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Target {
    /// A sysctl by dotted name (in the caller's network namespace for `net.*`).
    Sysctl {
        /// e.g. `net.core.busy_poll`.
        name: String,
    },
    /// A file under the root (`/proc`, `/sys`), by path relative to it.
    File {
        /// e.g. `proc/irq/24/smp_affinity_list`.
        path: String,
    },
    /// An ethtool setting of an interface.
    Nic {
        /// The interface.
        iface: String,
        /// e.g. `feature.gro`, `channels.combined`.
        key: String,
    },
    /// A system service: `active` or `inactive`.
    Service {
        /// e.g. `irqbalance`.
        name: String,
    },
    /// A change that is more than a value (a cgroup created, a controller
    /// enabled, a process moved): [`crate::cpuset::HostOp::apply`] and
    /// [`crate::cpuset::HostOp::undo`]. Written with the op's new value it is
    /// done; with its old value, undone.
    HostOp {
        /// The operation.
        op: crate::cpuset::HostOp,
    },
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sysctl { name } => write!(f, "sysctl {name}"),
            Self::File { path } => write!(f, "/{path}"),
            Self::Nic { iface, key } => write!(f, "{iface} {key}"),
            Self::Service { name } => write!(f, "service {name}"),
            Self::HostOp { op } => match op {
                crate::cpuset::HostOp::CreateDir { path, .. } => write!(f, "/{path}/ (cgroup)"),
                crate::cpuset::HostOp::EnableController {
                    path, controller, ..
                } => write!(f, "/{path} +{controller}"),
                crate::cpuset::HostOp::MoveProcess { pid, to, .. } => {
                    write!(f, "process {pid} → /{to}")
                }
            },
        }
    }
}

/// Why a target could not be read or written.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum AccessError {
    /// The kernel or device refused this value (EINVAL, ERANGE,
    /// EOPNOTSUPP on a write): reported, and the apply goes on.
    #[error("{target}: the device or kernel refused {value:?}: {why}")]
    Refused {
        /// What.
        target: String,
        /// The value refused.
        value: String,
        /// The kernel's reason.
        why: String,
    },
    /// Anything else (permission, I/O, a vanished device): the apply stops
    /// and rolls back.
    #[error("{target}: {why}")]
    Failed {
        /// What.
        target: String,
        /// What went wrong and what to do.
        why: String,
    },
    /// Nothing was written, on purpose: undoing it would touch something
    /// that is no longer what the apply changed (a process moved back
    /// whose PID now names another process). Reported, not a failure.
    #[error("{target}: {why}")]
    Skipped {
        /// What.
        target: String,
        /// Why it was left alone.
        why: String,
    },
}

/// Reads and writes targets: the machine, or a fake.
pub trait Access {
    /// The current value; `Ok(None)` when the target does not exist here
    /// (a sysctl this kernel lacks, a setting the driver does not support).
    ///
    /// # Errors
    /// When it exists but cannot be read.
    fn read(&self, target: &Target) -> Result<Option<String>, AccessError>;

    /// Sets a value.
    ///
    /// # Errors
    /// [`AccessError::Refused`] when the kernel refuses the value,
    /// [`AccessError::Failed`] otherwise.
    fn write(&self, target: &Target, value: &str) -> Result<(), AccessError>;

    /// Whether `target` is one an apply can touch here
    /// ([`crate::scope::check_target`]), and, for a created directory,
    /// whether it is still the directory the apply created
    /// ([`crate::scope::check_created_dir`]). [`apply`] checks every change
    /// and [`revert`] every entry with it before writing anything.
    ///
    /// # Errors
    /// Why the target is refused.
    fn check(&self, target: &Target) -> Result<(), String>;

    /// The identity of the directory `path` (relative to the root), recorded
    /// right after an apply created it; `None` when it cannot be examined.
    fn dir_id(&self, path: &str) -> Option<crate::scope::DirId>;
}

/// Values compare equal when they differ only in whitespace (the kernel
/// prints tabs in `tcp_rmem`, profiles use spaces).
#[must_use]
pub fn same_value(a: &str, b: &str) -> bool {
    a.split_whitespace().eq(b.split_whitespace())
}

/// One change: old → new.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Change {
    /// What.
    pub target: Target,
    /// The value now.
    pub old: String,
    /// The value wanted.
    pub new: String,
    /// Why, from the profile.
    pub why: String,
    /// A failure other than the kernel refusing the value is reported and
    /// the apply goes on (IRQs the kernel will not move, processes that
    /// exited), instead of stopping and rolling back.
    #[serde(default)]
    pub best_effort: bool,
}

/// A setting the plan leaves alone, and why.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Skipped {
    /// What.
    pub target: String,
    /// The value wanted.
    pub wanted: String,
    /// e.g. "already set", "not supported by the driver", "not present on this kernel".
    pub reason: String,
}

/// What `apply` would do.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Plan {
    /// The changes, in the order they are applied.
    pub changes: Vec<Change>,
    /// Settings already as wanted, or impossible here.
    pub skipped: Vec<Skipped>,
    /// Kernel command-line parameters to add (they need a reboot; never applied).
    pub reboot: Vec<String>,
}

/// What the planner needs to know about the machine besides the targets'
/// values: the CPUs, the interfaces and their interrupts, the C-states, and
/// the cpuset writes that isolate the chosen CPUs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PlanInput {
    /// The CPUs the trading threads run on (`--cpus`).
    pub cpus: Vec<usize>,
    /// Every online CPU.
    pub all_cpus: Vec<usize>,
    /// The interfaces named on the command line.
    pub ifaces: Vec<String>,
    /// The interrupts of their queues.
    pub irqs: Vec<u32>,
    /// C-states of the chosen CPUs: (cpu, state index, exit latency µs).
    pub cstates: Vec<(usize, usize, u64)>,
    /// CPUs of `cpus` that have a cpufreq governor.
    pub governor_cpus: Vec<usize>,
    /// Whether an irqbalance service exists.
    pub irqbalance: bool,
    /// The changes that isolate `cpus` with cpusets (and move IRQs and
    /// processes off them), from [`crate::cpuset::plan_cpu_isolation`].
    pub isolation: Vec<Change>,
}

/// Compares the profile (already [`Profile::expand`]ed) with the machine.
///
/// # Errors
/// When a target exists but cannot be read.
pub fn plan(
    profile: &Profile,
    input: &PlanInput,
    access: &dyn Access,
) -> Result<Plan, AccessError> {
    let mut p = Plan {
        reboot: profile.cmdline.clone(),
        ..Plan::default()
    };
    for c in &profile.cmdline_needs_cpus {
        p.skipped.push(Skipped {
            target: "kernel command line".into(),
            wanted: c.clone(),
            reason: "names the trading CPUs: give them with --cpus LIST (e.g. --cpus 2-3)".into(),
        });
    }
    let consider = |p: &mut Plan, target: Target, wanted: &str, why: &str, best_effort: bool| {
        match access.read(&target)? {
            None => p.skipped.push(Skipped {
                target: target.to_string(),
                wanted: wanted.to_string(),
                reason: match target {
                    Target::Nic { .. } => "not supported by the driver".into(),
                    Target::Service { .. } => "not installed, or no service manager to ask".into(),
                    _ => "not present on this kernel".into(),
                },
            }),
            Some(old) if same_value(&old, wanted) => p.skipped.push(Skipped {
                target: target.to_string(),
                wanted: wanted.to_string(),
                reason: "already set".into(),
            }),
            Some(old) => p.changes.push(Change {
                target,
                old,
                new: wanted.to_string(),
                why: why.to_string(),
                best_effort,
            }),
        }
        Ok::<(), AccessError>(())
    };
    for s in &profile.settings {
        let (v, why) = (s.value.as_str(), s.why.as_str());
        let per_cpu = matches!(
            s.want,
            Want::IrqAffinity | Want::Governor | Want::MaxCstateLatencyUs | Want::Isolate
        );
        if per_cpu && input.cpus.is_empty() {
            p.skipped.push(Skipped {
                target: s.want.to_string(),
                wanted: v.to_string(),
                reason: "give --cpus to plan this".into(),
            });
            continue;
        }
        match &s.want {
            Want::Sysctl(name) => {
                consider(&mut p, Target::Sysctl { name: name.clone() }, v, why, false)?
            }
            Want::Nic(key) => {
                for iface in &input.ifaces {
                    consider(
                        &mut p,
                        Target::Nic {
                            iface: iface.clone(),
                            key: key.clone(),
                        },
                        v,
                        why,
                        false,
                    )?;
                }
            }
            Want::IrqAffinity => {
                for irq in &input.irqs {
                    consider(
                        &mut p,
                        Target::File {
                            path: format!("proc/irq/{irq}/smp_affinity_list"),
                        },
                        v,
                        why,
                        false,
                    )?;
                }
            }
            Want::Governor => {
                for cpu in &input.governor_cpus {
                    consider(
                        &mut p,
                        Target::File {
                            path: format!(
                                "sys/devices/system/cpu/cpu{cpu}/cpufreq/scaling_governor"
                            ),
                        },
                        v,
                        why,
                        false,
                    )?;
                }
            }
            Want::MaxCstateLatencyUs => {
                let max: u64 = v.parse().unwrap_or(u64::MAX);
                for &(cpu, state, latency) in &input.cstates {
                    let disable = if latency > max { "1" } else { "0" };
                    consider(
                        &mut p,
                        Target::File {
                            path: format!(
                                "sys/devices/system/cpu/cpu{cpu}/cpuidle/state{state}/disable"
                            ),
                        },
                        disable,
                        why,
                        false,
                    )?;
                }
            }
            Want::Isolate => {
                if v == "on" {
                    // Files of a cgroup this plan creates are not there to
                    // read yet: planned as the isolation planner says.
                    let mut created: Vec<String> = Vec::new();
                    for c in &input.isolation {
                        let c = Change {
                            why: why.to_string(),
                            ..c.clone()
                        };
                        match &c.target {
                            Target::HostOp {
                                op: crate::cpuset::HostOp::CreateDir { path, .. },
                            } => {
                                created.push(format!("{path}/"));
                                p.changes.push(c);
                            }
                            Target::File { path }
                                if !created.iter().any(|d| path.starts_with(d.as_str())) =>
                            {
                                consider(&mut p, c.target.clone(), &c.new, why, c.best_effort)?;
                            }
                            _ => p.changes.push(c),
                        }
                    }
                }
            }
            Want::StopIrqbalance => {
                if v == "on" {
                    consider(
                        &mut p,
                        Target::Service {
                            name: "irqbalance".into(),
                        },
                        "inactive",
                        why,
                        false,
                    )?;
                }
            }
            Want::ThpEnabled => consider(
                &mut p,
                Target::File {
                    path: "sys/kernel/mm/transparent_hugepage/enabled".into(),
                },
                v,
                why,
                false,
            )?,
            Want::ThpDefrag => consider(
                &mut p,
                Target::File {
                    path: "sys/kernel/mm/transparent_hugepage/defrag".into(),
                },
                v,
                why,
                false,
            )?,
        }
    }
    // irqbalance must stop before interrupts are moved, or it moves them back
    // (a stable sort: the rest keeps the profile's order).
    p.changes
        .sort_by_key(|c| !matches!(c.target, Target::Service { .. }));
    Ok(p)
}

/// Identifies the machine a snapshot was taken on.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct HostId {
    /// `/etc/machine-id` (or the hostname when there is none).
    pub machine_id: String,
    /// The hostname.
    pub hostname: String,
}

/// The state of one snapshot entry.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum EntryState {
    /// Written before the change was attempted.
    Pending,
    /// The new value is in place.
    Applied,
    /// The device refused the new value; nothing changed.
    Refused,
    /// Applied, then undone by a rollback.
    RolledBack,
    /// Applied, and the rollback could not undo it: still changed, and
    /// `revert` restores it.
    RollbackFailed,
    /// Never attempted: the apply stopped before it. `revert` skips it.
    NotMade,
}

/// One value touched by an apply.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Entry {
    /// What.
    pub target: Target,
    /// Its value before.
    pub old: String,
    /// The value set.
    pub new: String,
    /// What happened.
    pub state: EntryState,
}

/// Every value an apply touched, written before the first change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Snapshot {
    /// Format marker.
    pub format: String,
    /// The machine.
    pub host: HostId,
    /// Seconds since the epoch when the apply started.
    pub created_unix: u64,
    /// The profile applied.
    pub profile: String,
    /// The values, in the order they were applied.
    pub entries: Vec<Entry>,
}

/// The format marker of snapshots.
pub const SNAPSHOT_FORMAT: &str = "hftnet-tune-snapshot-1";

/// Largest snapshot file read: 64 MiB (an apply records a few hundred
/// entries of a few hundred bytes). A larger file is refused before it is
/// read, not loaded whole into memory.
pub const MAX_SNAPSHOT_BYTES: u64 = 64 << 20;

/// Why a snapshot could not be used.
#[derive(Debug, thiserror::Error)]
pub enum SnapshotError {
    /// Cannot read or write the file.
    #[error("snapshot {path}: {source}")]
    Io {
        /// The file.
        path: String,
        /// The error.
        source: std::io::Error,
    },
    /// Not a complete snapshot.
    #[error(
        "snapshot {path} is not a complete hftnet snapshot ({why}); was it cut short or edited?"
    )]
    Corrupt {
        /// The file.
        path: String,
        /// The parser's complaint.
        why: String,
    },
    /// A file is already there: a snapshot is never overwritten.
    #[error(
        "snapshot {path} already exists: a snapshot holds the values to restore and is never \
         overwritten; revert it first, or name another file with --snapshot"
    )]
    Exists {
        /// The file.
        path: String,
    },
    /// A file that root must not trust.
    #[error("snapshot {path} {why}: a snapshot tells root what to write where; refusing it")]
    Untrusted {
        /// The file.
        path: String,
        /// What is wrong with it.
        why: String,
    },
    /// An entry names something an apply never touches: the snapshot was
    /// not written by one (or was edited), and none of it is reverted.
    #[error(
        "snapshot entry {entry} ({target}): {why}; an apply never touches that, so the snapshot \
         was not written by one (or was edited): refusing all of it, nothing was reverted"
    )]
    OutOfScope {
        /// The entry, counted from 1.
        entry: usize,
        /// The entry's target.
        target: String,
        /// Why it is refused.
        why: String,
    },
    /// A planned change names something outside what an apply may touch
    /// (a bug of the planner): nothing was changed.
    #[error("planned change {change} ({target}): {why}; refusing to apply anything")]
    PlanOutOfScope {
        /// The change, counted from 1.
        change: usize,
        /// Its target.
        target: String,
        /// Why it is refused.
        why: String,
    },
    /// Taken on another machine.
    #[error(
        "snapshot {path} was taken on {theirs} (machine-id {their_id}), this is {ours} (machine-id {our_id}); its values may not fit this machine — pass --force to restore them anyway"
    )]
    OtherHost {
        /// The file.
        path: String,
        /// Their hostname.
        theirs: String,
        /// Their machine id.
        their_id: String,
        /// Our hostname.
        ours: String,
        /// Our machine id.
        our_id: String,
    },
}

impl Snapshot {
    /// Writes a new snapshot at `path` (mode 0600, synced), never over an
    /// existing file and never through a symbolic link.
    ///
    /// # Errors
    /// [`SnapshotError::Exists`] when `path` exists, [`SnapshotError::Io`].
    pub fn create(&self, path: &Path) -> Result<(), SnapshotError> {
        self.write_whole(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::AlreadyExists {
                SnapshotError::Exists {
                    path: path.display().to_string(),
                }
            } else {
                SnapshotError::Io {
                    path: path.display().to_string(),
                    source,
                }
            }
        })
    }

    /// Rewrites the snapshot this apply created at `path`: a new file
    /// beside it (mode 0600, synced), renamed over it.
    ///
    /// # Errors
    /// [`SnapshotError::Io`].
    pub fn save(&self, path: &Path) -> Result<(), SnapshotError> {
        let io = |source| SnapshotError::Io {
            path: path.display().to_string(),
            source,
        };
        let mut tmp = path.as_os_str().to_owned();
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.subsec_nanos());
        tmp.push(format!(".{}.{nanos}.tmp", std::process::id()));
        let tmp = std::path::PathBuf::from(tmp);
        let _ = std::fs::remove_file(&tmp);
        self.write_new(&tmp).map_err(io)?;
        std::fs::rename(&tmp, path).map_err(|e| {
            let _ = std::fs::remove_file(&tmp);
            io(e)
        })
    }

    /// Removes what a rewrite ([`Self::save`]) of the snapshot at `path`
    /// left when its process was killed while writing: the temporary file
    /// beside it, `NAME.PID.NANOS.tmp`, whose process `PID` is gone. Only
    /// regular files of this user are removed, never through a symbolic
    /// link. Returns the files removed.
    pub fn remove_stale_temporaries(path: &Path) -> Vec<std::path::PathBuf> {
        use std::os::unix::fs::MetadataExt;
        let (Some(dir), Some(name)) = (path.parent(), path.file_name().and_then(|n| n.to_str()))
        else {
            return Vec::new();
        };
        let dir = if dir.as_os_str().is_empty() {
            Path::new(".")
        } else {
            dir
        };
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Vec::new();
        };
        let me = hftnet_sys::proc::euid();
        let mut removed = Vec::new();
        for e in entries.filter_map(Result::ok) {
            let file = e.file_name();
            let Some(pid) = file
                .to_str()
                .and_then(|f| {
                    f.strip_prefix(name)?
                        .strip_prefix('.')?
                        .strip_suffix(".tmp")
                })
                .and_then(|mid| mid.split_once('.'))
                .filter(|(_, n)| !n.is_empty() && n.bytes().all(|b| b.is_ascii_digit()))
                .and_then(|(pid, _)| pid.parse::<u32>().ok())
            else {
                continue;
            };
            let p = e.path();
            let ours = std::fs::symlink_metadata(&p).is_ok_and(|m| m.is_file() && m.uid() == me);
            if ours
                && pid != 0
                && matches!(hftnet_sys::proc::exists(pid), Ok(false))
                && std::fs::remove_file(&p).is_ok()
            {
                removed.push(p);
            }
        }
        removed
    }

    /// Writes the snapshot into an unnamed file (`O_TMPFILE`, 0600) and
    /// names it `path` only once it is whole and synced (`linkat`, which
    /// never replaces a file or follows a link): a process killed while
    /// writing leaves no partial snapshot that `revert` would refuse. Where
    /// the file system has no unnamed files, as [`Self::write_new`].
    fn write_whole(&self, path: &Path) -> std::io::Result<()> {
        use std::os::fd::AsFd;
        use std::os::unix::fs::OpenOptionsExt;
        let dir = match path.parent() {
            Some(d) if !d.as_os_str().is_empty() => d,
            _ => Path::new("."),
        };
        let opened = std::fs::OpenOptions::new()
            .write(true)
            .mode(0o600)
            .custom_flags(libc::O_TMPFILE | libc::O_CLOEXEC)
            .open(dir);
        let mut f = match opened {
            Ok(f) => f,
            Err(e) if matches!(e.raw_os_error(), Some(libc::EOPNOTSUPP | libc::EISDIR)) => {
                return self.write_new(path);
            }
            Err(e) => return Err(e),
        };
        let text = serde_json::to_string_pretty(self)?;
        f.write_all(text.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()?;
        hftnet_sys::proc::link_fd(f.as_fd(), path).map_err(std::io::Error::from)
    }

    /// Writes the snapshot into a new file (`O_EXCL`, `O_NOFOLLOW`, 0600).
    fn write_new(&self, path: &Path) -> std::io::Result<()> {
        use std::os::unix::fs::OpenOptionsExt;
        let text = serde_json::to_string_pretty(self)?;
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
            .open(path)?;
        f.write_all(text.as_bytes())?;
        f.write_all(b"\n")?;
        f.sync_all()
    }

    /// Reads a snapshot and checks it was taken on `host` (unless `force`).
    ///
    /// # Errors
    /// See [`SnapshotError`].
    pub fn load(path: &Path, host: &HostId, force: bool) -> Result<Self, SnapshotError> {
        let p = path.display().to_string();
        let bytes = crate::trusted::read_trusted(
            path,
            MAX_SNAPSHOT_BYTES,
            "MAX_SNAPSHOT_BYTES",
            "more than any apply writes",
        )
        .map_err(|e| match e {
            crate::trusted::TrustError::Io(source) => SnapshotError::Io {
                path: p.clone(),
                source,
            },
            crate::trusted::TrustError::Untrusted(why) => SnapshotError::Untrusted {
                path: p.clone(),
                why,
            },
        })?;
        Self::parse(&p, &bytes, host, force)
    }

    /// Reads a snapshot from the bytes of its file (`path` names it in
    /// errors) and checks it was taken on `host` (unless `force`): what
    /// [`Snapshot::load`] does once the file is read.
    ///
    /// # Errors
    /// [`SnapshotError::Corrupt`] or [`SnapshotError::OtherHost`].
    pub fn parse(
        path: &str,
        bytes: &[u8],
        host: &HostId,
        force: bool,
    ) -> Result<Self, SnapshotError> {
        let p = path.to_owned();
        let s: Snapshot = serde_json::from_slice(bytes).map_err(|e| SnapshotError::Corrupt {
            path: p.clone(),
            why: e.to_string(),
        })?;
        if s.format != SNAPSHOT_FORMAT {
            return Err(SnapshotError::Corrupt {
                path: p,
                why: format!("format {:?}, expected {SNAPSHOT_FORMAT:?}", s.format),
            });
        }
        if !force && s.host.machine_id != host.machine_id {
            return Err(SnapshotError::OtherHost {
                path: p,
                theirs: s.host.hostname,
                their_id: s.host.machine_id,
                ours: host.hostname.clone(),
                our_id: host.machine_id.clone(),
            });
        }
        Ok(s)
    }
}

/// The outcome of one change of an apply or revert.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Outcome {
    /// What.
    pub target: String,
    /// From.
    pub old: String,
    /// To.
    pub new: String,
    /// `applied`, `refused: …`, `rolled back`, `restored`, `already restored`,
    /// `changed since: …`, `stored as …`.
    pub result: String,
}

/// What [`apply`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ApplyReport {
    /// One per change, in order.
    pub outcomes: Vec<Outcome>,
    /// Set when the apply stopped and rolled back: why.
    pub failed: Option<String>,
    /// Command-line parameters that need a reboot.
    pub reboot: Vec<String>,
    /// What a failed apply could not roll back: still changed (the
    /// snapshot has them as `rollback_failed`; `revert` restores them).
    pub still_changed: Vec<String>,
    /// An update of the snapshot failed: why. What is on disk still lets
    /// `revert` restore every change (each was recorded before it was
    /// made); an update that failed before a change stopped the apply.
    pub snapshot_error: Option<String>,
}

/// Applies a plan, write-ahead: the snapshot is created with every change
/// as `pending` before the first one is made, and each change is on disk
/// with the value it replaces before it is made (the snapshot is saved
/// again first when that value is not the planned one). What the write
/// itself teaches (the value the kernel stored instead, the identity of a
/// created directory) is saved right after, and the states at the end. So
/// after a crash at any point, or a failed save, `revert` restores
/// everything: a pending entry found at its new value is restored, one at
/// its old value is left alone.
///
/// Each change is read back after writing. A refused value is reported and
/// skipped; any other failure, or a snapshot that cannot be saved, rolls
/// back what was already applied, in reverse order.
///
/// # Errors
/// Only when the plan names something an apply may not touch, or the
/// snapshot cannot be created — then nothing was changed. A failure of a
/// later save is in [`ApplyReport::snapshot_error`].
pub fn apply(
    plan: &Plan,
    access: &dyn Access,
    snapshot: &mut Snapshot,
    path: &Path,
) -> Result<ApplyReport, SnapshotError> {
    for (i, c) in plan.changes.iter().enumerate() {
        crate::scope::check_value(&c.target, &c.new)
            .and_then(|()| access.check(&c.target))
            .map_err(|why| SnapshotError::PlanOutOfScope {
                change: i + 1,
                target: c.target.to_string(),
                why,
            })?;
    }
    snapshot.entries = plan
        .changes
        .iter()
        .map(|c| Entry {
            target: c.target.clone(),
            old: c.old.clone(),
            new: c.new.clone(),
            state: EntryState::Pending,
        })
        .collect();
    snapshot.create(path)?;
    let mut report = ApplyReport {
        reboot: plan.reboot.clone(),
        ..ApplyReport::default()
    };
    let mut stop: Option<(usize, String)> = None;
    // Entries from this index on were never attempted when the apply stops.
    let mut untried = snapshot.entries.len();
    for i in 0..snapshot.entries.len() {
        let e = snapshot.entries[i].clone();
        let mut outcome = Outcome {
            target: e.target.to_string(),
            old: e.old.clone(),
            new: e.new.clone(),
            result: String::new(),
        };
        // The value right before the write is the one to restore (an
        // earlier change of this apply may have touched the same file, or
        // someone else since the plan): on disk before the write.
        if !matches!(e.target, Target::HostOp { .. })
            && let Ok(Some(now)) = access.read(&e.target)
            && !same_value(&now, &e.old)
        {
            snapshot.entries[i].old = now.clone();
            outcome.old = now;
            if let Err(err) = snapshot.save(path) {
                outcome.result = "not made: the snapshot could not record its value".into();
                report.outcomes.push(outcome);
                report.snapshot_error = Some(err.to_string());
                stop = Some((i, format!("the snapshot could not be updated: {err}")));
                untried = i;
                break;
            }
        }
        let e = snapshot.entries[i].clone();
        match access.write(&e.target, &e.new) {
            Ok(()) => {
                snapshot.entries[i].state = EntryState::Applied;
                let mut learned = false;
                if let Target::HostOp {
                    op: crate::cpuset::HostOp::CreateDir { path, created },
                } = &mut snapshot.entries[i].target
                {
                    *created = access.dir_id(path);
                    learned = true;
                }
                let e = snapshot.entries[i].clone();
                outcome.result = match access.read(&e.target) {
                    Ok(Some(v)) if same_value(&v, &e.new) => "applied".into(),
                    Ok(Some(v)) if !matches!(e.target, Target::HostOp { .. }) => {
                        // Kept: it is what the kernel made of our value.
                        snapshot.entries[i].new = v.clone();
                        learned = true;
                        format!("stored as {v:?}")
                    }
                    Ok(Some(v)) => format!("applied (reads {v:?})"),
                    Ok(None) => "applied (cannot be read back)".into(),
                    Err(err) => format!("applied (read back failed: {err})"),
                };
                report.outcomes.push(outcome);
                if learned && let Err(err) = snapshot.save(path) {
                    report.snapshot_error = Some(err.to_string());
                    stop = Some((i + 1, format!("the snapshot could not be updated: {err}")));
                    untried = i + 1;
                    break;
                }
            }
            Err(AccessError::Refused { why, .. }) => {
                snapshot.entries[i].state = EntryState::Refused;
                outcome.result = format!("refused: {why}");
                report.outcomes.push(outcome);
            }
            Err(err @ AccessError::Skipped { .. }) => {
                snapshot.entries[i].state = EntryState::Refused;
                outcome.result = format!("left as it was: {err}");
                report.outcomes.push(outcome);
            }
            Err(err @ AccessError::Failed { .. }) if plan.changes[i].best_effort => {
                // Nothing changed; the apply goes on.
                snapshot.entries[i].state = EntryState::Refused;
                outcome.result = format!("failed, left as it was (best effort): {err}");
                report.outcomes.push(outcome);
            }
            Err(err @ AccessError::Failed { .. }) => {
                outcome.result = format!("failed: {err}");
                report.outcomes.push(outcome);
                stop = Some((i, err.to_string()));
                untried = i + 1;
                break;
            }
        }
    }
    if let Some((done, why)) = stop {
        report.failed = Some(why);
        for e in &mut snapshot.entries[untried..] {
            if e.state == EntryState::Pending {
                e.state = EntryState::NotMade;
            }
        }
        // Entries before `done` may be applied: undone in reverse order.
        for j in (0..done).rev() {
            let e = &snapshot.entries[j];
            if e.state != EntryState::Applied {
                continue;
            }
            let (result, state) = match access.write(&e.target, &e.old) {
                Ok(()) => ("rolled back".to_string(), EntryState::RolledBack),
                Err(AccessError::Skipped { why, .. }) => {
                    (format!("left alone: {why}"), EntryState::RolledBack)
                }
                Err(err) => {
                    report.still_changed.push(e.target.to_string());
                    (
                        format!("ROLLBACK FAILED, still {:?}: {err}", e.new),
                        EntryState::RollbackFailed,
                    )
                }
            };
            report.outcomes.push(Outcome {
                target: e.target.to_string(),
                old: e.new.clone(),
                new: e.old.clone(),
                result,
            });
            snapshot.entries[j].state = state;
        }
    }
    // The states at the end. A failure is reported with the changes, not
    // instead of them: what is on disk already lets revert restore them.
    if let Err(e) = snapshot.save(path)
        && report.snapshot_error.is_none()
    {
        report.snapshot_error = Some(e.to_string());
    }
    Ok(report)
}

/// Checks every entry of a snapshot against what an apply can touch
/// ([`crate::scope`], [`Access::check`]); [`revert`] does it first.
///
/// # Errors
/// [`SnapshotError::OutOfScope`] naming the first entry refused.
pub fn check_entries(snapshot: &Snapshot, access: &dyn Access) -> Result<(), SnapshotError> {
    for (i, e) in snapshot.entries.iter().enumerate() {
        crate::scope::check_entry_shape(e)
            .and_then(|()| access.check(&e.target))
            .map_err(|why| SnapshotError::OutOfScope {
                entry: i + 1,
                target: e.target.to_string(),
                why,
            })?;
    }
    Ok(())
}

/// What [`revert`] did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RevertReport {
    /// One per snapshot entry that was applied, in reverse order.
    pub outcomes: Vec<Outcome>,
    /// Entries changed by someone else since the apply, left alone
    /// (without `force`).
    pub conflicts: usize,
    /// Entries that could not be restored.
    pub failures: usize,
}

/// Restores every applied entry of a snapshot, in reverse order. An entry
/// already at its old value is left alone (so reverting twice is safe); one
/// at neither its old nor its new value was changed by someone else and is
/// only overwritten with `force`.
///
/// Every entry is checked first ([`crate::scope`], [`Access::check`]): a
/// snapshot with one entry an apply could not have written is refused
/// whole, `force` or not, and nothing is written.
///
/// # Errors
/// [`SnapshotError::OutOfScope`] naming the first entry refused.
pub fn revert(
    snapshot: &Snapshot,
    access: &dyn Access,
    force: bool,
) -> Result<RevertReport, SnapshotError> {
    check_entries(snapshot, access)?;
    let mut r = RevertReport::default();
    // Directories this apply created: the files in them go with them.
    let created: Vec<String> = snapshot
        .entries
        .iter()
        .filter_map(|e| match &e.target {
            Target::HostOp {
                op: crate::cpuset::HostOp::CreateDir { path, .. },
            } if matches!(e.state, EntryState::Applied | EntryState::RollbackFailed) => {
                Some(format!("{path}/"))
            }
            _ => None,
        })
        .collect();
    for e in snapshot.entries.iter().rev() {
        if !matches!(
            e.state,
            EntryState::Applied | EntryState::Pending | EntryState::RollbackFailed
        ) {
            continue;
        }
        let mut outcome = Outcome {
            target: e.target.to_string(),
            old: e.new.clone(),
            new: e.old.clone(),
            result: String::new(),
        };
        if let Target::File { path } = &e.target
            && created.iter().any(|d| path.starts_with(d.as_str()))
        {
            outcome.result = "removed with its directory".into();
            r.outcomes.push(outcome);
            continue;
        }
        if let Target::HostOp {
            op: crate::cpuset::HostOp::CreateDir { .. },
        } = &e.target
            && matches!(access.read(&e.target), Ok(Some(v)) if v == "absent")
        {
            outcome.result = "already restored".into();
            r.outcomes.push(outcome);
            continue;
        }
        // A pending entry may never have been made (an apply killed right
        // before it): a controller is only disabled while it is enabled. (A
        // moved process is only moved back while it is in the cgroup it was
        // moved to, and a created directory only removed while it is the
        // one created: the host module checks those.)
        if let Target::HostOp {
            op: crate::cpuset::HostOp::EnableController { controller, .. },
        } = &e.target
            && e.state == EntryState::Pending
            && let Ok(Some(now)) = access.read(&e.target)
            && !now.split_whitespace().any(|c| c == controller)
        {
            outcome.result = "never made (the apply stopped before it)".into();
            r.outcomes.push(outcome);
            continue;
        }
        if let Target::HostOp { .. } = &e.target {
            // Undone by the host module, which knows how (moving processes
            // back, removing a cgroup); a process that has exited is fine.
            outcome.result = match access.write(&e.target, &e.old) {
                Ok(()) => "undone".into(),
                Err(AccessError::Skipped { why, .. }) => format!("left alone: {why}"),
                Err(err) => {
                    r.failures += 1;
                    format!("failed: {err}")
                }
            };
            r.outcomes.push(outcome);
            continue;
        }
        let now = match access.read(&e.target) {
            Ok(v) => v,
            Err(err) => {
                r.failures += 1;
                outcome.result = format!("cannot read: {err}");
                r.outcomes.push(outcome);
                continue;
            }
        };
        let Some(now) = now else {
            r.failures += 1;
            outcome.result = "no longer exists".into();
            r.outcomes.push(outcome);
            continue;
        };
        if same_value(&now, &e.old) {
            outcome.result = "already restored".into();
        } else if same_value(&now, &e.new) || force {
            outcome.old = now.clone();
            outcome.result = match access.write(&e.target, &e.old) {
                Ok(()) if !same_value(&now, &e.new) => format!("restored (overwrote {now:?})"),
                Ok(()) => "restored".into(),
                Err(err) => {
                    r.failures += 1;
                    format!("failed: {err}")
                }
            };
        } else {
            r.conflicts += 1;
            outcome.old = now.clone();
            outcome.result = format!(
                "changed since the apply (now {now:?}, we set {:?}); left alone — pass --force to restore {:?}",
                e.new, e.old
            );
        }
        r.outcomes.push(outcome);
    }
    Ok(r)
}

#[cfg(test)]
mod tests {
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    use super::*;

    /// A machine made of a map; `refuse` and `fail` make writes of a value fail.
    #[derive(Default)]
    struct Fake {
        values: RefCell<BTreeMap<String, String>>,
        refuse: Vec<(Target, String)>,
        fail: Vec<Target>,
        /// Writes of this value to this target fail (a rollback that fails).
        fail_value: RefCell<Vec<(Target, String)>>,
        /// (target, written, stored): what the kernel stores instead.
        rounds: Vec<(Target, String, String)>,
        /// When set, every write checks that the snapshot at this path
        /// already records the target with the value it replaces
        /// (write-ahead); violations are collected here.
        journal: std::rc::Rc<RefCell<Option<std::path::PathBuf>>>,
        violations: RefCell<Vec<String>>,
        /// Runs (once) right before this target is written: a crash (a
        /// panic), or something done to the snapshot's directory.
        before_write: RefCell<Option<(Target, Hook)>>,
    }

    type Hook = Box<dyn Fn()>;

    impl Access for Fake {
        fn read(&self, t: &Target) -> Result<Option<String>, AccessError> {
            Ok(self.values.borrow().get(&t.to_string()).cloned())
        }

        fn write(&self, t: &Target, v: &str) -> Result<(), AccessError> {
            let hook = self.before_write.borrow_mut().take_if(|(ht, _)| ht == t);
            if let Some((_, f)) = hook {
                f();
            }
            let journal = self.journal.borrow().clone();
            if let Some(path) = journal {
                let now = self.values.borrow().get(&t.to_string()).cloned();
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let disk: Snapshot = serde_json::from_str(&text)
                    .unwrap_or_else(|e| panic!("snapshot on disk before writing {t}: {e}"));
                let mine = disk.entries.iter().filter(|e| &e.target == t);
                let undo = mine.clone().any(|e| e.old == v);
                let recorded = mine
                    .clone()
                    .any(|e| e.new == v && now.as_deref().is_some_and(|n| same_value(n, &e.old)));
                if !undo && !recorded {
                    self.violations.borrow_mut().push(format!(
                        "{t} := {v:?} while it holds {now:?}, not on disk: {:?}",
                        mine.collect::<Vec<_>>()
                    ));
                }
            }
            if self.refuse.iter().any(|(rt, rv)| rt == t && rv == v) {
                return Err(AccessError::Refused {
                    target: t.to_string(),
                    value: v.into(),
                    why: "Invalid argument".into(),
                });
            }
            if self.fail.contains(t)
                || self
                    .fail_value
                    .borrow()
                    .iter()
                    .any(|(ft, fv)| ft == t && fv == v)
            {
                return Err(AccessError::Failed {
                    target: t.to_string(),
                    why: "Permission denied: needs root".into(),
                });
            }
            let stored = self
                .rounds
                .iter()
                .find(|(rt, w, _)| rt == t && w == v)
                .map_or(v.to_string(), |(_, _, s)| s.clone());
            self.values.borrow_mut().insert(t.to_string(), stored);
            Ok(())
        }

        fn check(&self, t: &Target) -> Result<(), String> {
            match t {
                Target::Service { name } if name != crate::scope::IRQBALANCE => {
                    Err("not irqbalance".into())
                }
                _ => Ok(()),
            }
        }

        fn dir_id(&self, _: &str) -> Option<crate::scope::DirId> {
            Some(crate::scope::DirId { dev: 1, ino: 2 })
        }
    }

    fn ins(v: &mut BTreeMap<String, String>, t: Target, value: String) {
        v.insert(t.to_string(), value);
    }

    fn sysctl(n: &str) -> Target {
        Target::Sysctl { name: n.into() }
    }

    fn nic(k: &str) -> Target {
        Target::Nic {
            iface: "veth0".into(),
            key: k.into(),
        }
    }

    fn host() -> HostId {
        HostId {
            machine_id: "abc".into(),
            hostname: "box".into(),
        }
    }

    fn machine() -> Fake {
        let f = Fake::default();
        {
            let mut v = f.values.borrow_mut();
            ins(&mut v, sysctl("net.core.busy_poll"), "0".into());
            ins(&mut v, sysctl("net.core.busy_read"), "50".into());
            ins(
                &mut v,
                sysctl("net.ipv4.tcp_rmem"),
                "4096\t131072\t6291456".into(),
            );
            ins(&mut v, nic("feature.gro"), "on".into());
            ins(
                &mut v,
                Target::File {
                    path: "proc/irq/24/smp_affinity_list".into(),
                },
                "0-3".into(),
            );
            ins(
                &mut v,
                Target::File {
                    path: "proc/irq/25/smp_affinity_list".into(),
                },
                "0-3".into(),
            );
            ins(
                &mut v,
                Target::Service {
                    name: "irqbalance".into(),
                },
                "active".into(),
            );
            ins(
                &mut v,
                Target::File {
                    path: "sys/devices/system/cpu/cpu2/cpuidle/state2/disable".into(),
                },
                "0".into(),
            );
            ins(
                &mut v,
                Target::File {
                    path: "sys/devices/system/cpu/cpu2/cpuidle/state1/disable".into(),
                },
                "0".into(),
            );
        }
        f
    }

    fn profile() -> Profile {
        Profile::parse(
            "t",
            r#"name = "t"
[sysctl]
"net.core.busy_poll" = { value = "50", why = "poll" }
"net.core.busy_read" = "50"
"net.ipv4.tcp_rmem" = "4096 131072 6291456"
"net.ipv4.no_such_thing" = "1"
[nic]
"feature.gro" = "off"
"coalesce.rx-usecs" = "0"
[irq]
affinity = "{cpus}"
[cpu]
max_cstate_latency_us = "10"
stop_irqbalance = "on"
[cmdline]
params = ["nohz_full={cpus}"]
"#,
        )
        .unwrap()
        .expand(&[2, 3], &[0, 1, 2, 3])
    }

    fn input() -> PlanInput {
        PlanInput {
            cpus: vec![2, 3],
            all_cpus: vec![0, 1, 2, 3],
            ifaces: vec!["veth0".into()],
            irqs: vec![24, 25],
            cstates: vec![(2, 1, 2), (2, 2, 100)],
            governor_cpus: vec![],
            irqbalance: true,
            isolation: vec![],
        }
    }

    #[test]
    fn the_planner_compares_without_writing() {
        let m = machine();
        let before = m.values.borrow().clone();
        let p = plan(&profile(), &input(), &m).unwrap();
        assert_eq!(*m.values.borrow(), before, "planning writes nothing");
        let changes: Vec<(String, &str, &str)> = p
            .changes
            .iter()
            .map(|c| (c.target.to_string(), c.old.as_str(), c.new.as_str()))
            .collect();
        assert_eq!(
            changes,
            vec![
                ("service irqbalance".to_string(), "active", "inactive"),
                ("sysctl net.core.busy_poll".to_string(), "0", "50"),
                ("veth0 feature.gro".to_string(), "on", "off"),
                ("/proc/irq/24/smp_affinity_list".to_string(), "0-3", "2-3"),
                ("/proc/irq/25/smp_affinity_list".to_string(), "0-3", "2-3"),
                (
                    "/sys/devices/system/cpu/cpu2/cpuidle/state2/disable".to_string(),
                    "0",
                    "1"
                ),
            ]
        );
        assert_eq!(p.changes[1].why, "poll");
        let skipped: Vec<(&str, &str)> = p
            .skipped
            .iter()
            .map(|s| (s.target.as_str(), s.reason.as_str()))
            .collect();
        assert!(skipped.contains(&("sysctl net.core.busy_read", "already set")));
        assert!(
            skipped.contains(&("sysctl net.ipv4.tcp_rmem", "already set")),
            "tabs and spaces are the same value"
        );
        assert!(skipped.contains(&(
            "sysctl net.ipv4.no_such_thing",
            "not present on this kernel"
        )));
        assert!(skipped.contains(&("veth0 coalesce.rx-usecs", "not supported by the driver")));
        assert_eq!(p.reboot, vec!["nohz_full=2-3"]);
    }

    fn tmp(name: &str) -> std::path::PathBuf {
        std::env::temp_dir().join(format!("hftnet-plan-{}-{name}.json", std::process::id()))
    }

    fn new_snapshot() -> Snapshot {
        Snapshot {
            format: SNAPSHOT_FORMAT.into(),
            host: host(),
            created_unix: 0,
            profile: "t".into(),
            entries: vec![],
        }
    }

    #[test]
    fn snapshot_parse_is_what_load_reads() {
        let mut snap = new_snapshot();
        snap.entries.push(Entry {
            target: sysctl("net.core.busy_poll"),
            old: "0".into(),
            new: "50".into(),
            state: EntryState::Applied,
        });
        let text = serde_json::to_vec_pretty(&snap).unwrap();
        assert_eq!(Snapshot::parse("s", &text, &host(), false).unwrap(), snap);
        // Not UTF-8, not JSON, another format: named as not a snapshot.
        for bad in [&b"\xff\xfe"[..], b"", b"{}", &text[..text.len() - 2]] {
            let e = Snapshot::parse("s.json", bad, &host(), false).unwrap_err();
            assert!(matches!(e, SnapshotError::Corrupt { .. }), "{e}");
            assert!(e.to_string().contains("s.json"), "{e}");
        }
        snap.format = "hftnet-tune-snapshot-0".into();
        let text = serde_json::to_vec(&snap).unwrap();
        let e = Snapshot::parse("s", &text, &host(), true).unwrap_err();
        assert!(e.to_string().contains("expected"), "{e}");
    }

    #[test]
    fn apply_then_revert_round_trips_exactly() {
        let m = machine();
        let before = m.values.borrow().clone();
        let p = plan(&profile(), &input(), &m).unwrap();
        let path = tmp("round");
        let mut snap = new_snapshot();
        let r = apply(&p, &m, &mut snap, &path).unwrap();
        assert!(r.failed.is_none());
        assert!(r.outcomes.iter().all(|o| o.result == "applied"), "{r:?}");
        assert_eq!(
            m.read(&sysctl("net.core.busy_poll")).unwrap().as_deref(),
            Some("50")
        );
        let loaded = Snapshot::load(&path, &host(), false).unwrap();
        assert_eq!(loaded, snap);
        assert!(
            loaded
                .entries
                .iter()
                .all(|e| e.state == EntryState::Applied)
        );

        let r = revert(&loaded, &m, false).unwrap();
        assert_eq!((r.conflicts, r.failures), (0, 0));
        assert_eq!(*m.values.borrow(), before, "exactly as before");
        // Twice is safe.
        let r = revert(&loaded, &m, false).unwrap();
        assert!(r.outcomes.iter().all(|o| o.result == "already restored"));
        assert_eq!(*m.values.borrow(), before);
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn refused_values_are_reported_and_the_rest_applied() {
        let mut m = machine();
        m.refuse.push((nic("feature.gro"), "off".into()));
        m.rounds
            .push((sysctl("net.core.busy_poll"), "50".into(), "48".into()));
        let p = plan(&profile(), &input(), &m).unwrap();
        let path = tmp("refused");
        let mut snap = new_snapshot();
        let r = apply(&p, &m, &mut snap, &path).unwrap();
        assert!(r.failed.is_none());
        let gro = r
            .outcomes
            .iter()
            .find(|o| o.target == "veth0 feature.gro")
            .unwrap();
        assert!(
            gro.result.starts_with("refused: Invalid argument"),
            "{gro:?}"
        );
        let bp = r
            .outcomes
            .iter()
            .find(|o| o.target == "sysctl net.core.busy_poll")
            .unwrap();
        assert_eq!(bp.result, "stored as \"48\"");
        // Revert restores what was applied, and only that.
        let r = revert(&snap, &m, false).unwrap();
        assert_eq!((r.conflicts, r.failures), (0, 0));
        assert_eq!(
            m.read(&sysctl("net.core.busy_poll")).unwrap().as_deref(),
            Some("0")
        );
        assert_eq!(m.read(&nic("feature.gro")).unwrap().as_deref(), Some("on"));
        std::fs::remove_file(&path).unwrap();
    }

    /// Host operations an apply never attempted (it stopped before them)
    /// are `not_made` in the snapshot and left alone by revert; a pending
    /// one (an apply killed mid-way) is undone only when the host shows it
    /// was done.
    #[test]
    fn host_ops_never_made_are_not_undone() {
        let m = Fake::default();
        let bad = Target::File {
            path: "proc/irq/24/smp_affinity_list".into(),
        };
        let enable = Target::HostOp {
            op: crate::cpuset::HostOp::EnableController {
                path: "sys/fs/cgroup/cgroup.subtree_control".into(),
                old: "cpu io".into(),
                controller: "cpuset".into(),
            },
        };
        let mut m = m;
        m.fail.push(bad.clone());
        {
            let mut v = m.values.borrow_mut();
            ins(&mut v, bad.clone(), "0-3".into());
            // Someone enabled cpuset by hand after the plan.
            ins(&mut v, enable.clone(), "cpu io cpuset".into());
        }
        let change = |target: &Target, old: &str, new: &str| Change {
            target: target.clone(),
            old: old.into(),
            new: new.into(),
            why: String::new(),
            best_effort: false,
        };
        let p = Plan {
            changes: vec![
                change(&bad, "0-3", "2"),
                change(&enable, "cpu io", "cpu io cpuset"),
            ],
            skipped: vec![],
            reboot: vec![],
        };
        let path = tmp("not-made");
        let mut snap = new_snapshot();
        let r = apply(&p, &m, &mut snap, &path).unwrap();
        assert!(r.failed.is_some(), "{r:?}");
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(text.contains("\"not_made\""), "{text}");
        let saved: Snapshot = serde_json::from_str(&text).unwrap();
        assert_eq!(saved.entries[1].state, EntryState::NotMade);
        let r = revert(&saved, &m, false).unwrap();
        assert_eq!((r.conflicts, r.failures), (0, 0), "{r:?}");
        assert_eq!(
            m.read(&enable).unwrap().as_deref(),
            Some("cpu io cpuset"),
            "left alone: {r:?}"
        );
        // Pending (a crash right before it): undone only when done.
        let mut pending = saved.clone();
        pending.entries[1].state = EntryState::Pending;
        ins(&mut m.values.borrow_mut(), enable.clone(), "cpu io".into());
        m.fail.clear();
        let r = revert(&pending, &m, false).unwrap();
        assert_eq!((r.conflicts, r.failures), (0, 0), "{r:?}");
        let o = r
            .outcomes
            .iter()
            .find(|o| o.target == enable.to_string())
            .unwrap();
        assert!(o.result.starts_with("never made"), "{o:?}");
        assert_eq!(m.read(&enable).unwrap().as_deref(), Some("cpu io"));
        ins(
            &mut m.values.borrow_mut(),
            enable.clone(),
            "cpu io cpuset".into(),
        );
        let r = revert(&pending, &m, false).unwrap();
        let o = r
            .outcomes
            .iter()
            .find(|o| o.target == enable.to_string())
            .unwrap();
        assert_eq!(o.result, "undone", "{o:?}");
        assert_eq!(m.read(&enable).unwrap().as_deref(), Some("cpu io"));
    }

    #[test]
    fn a_failure_halfway_rolls_back() {
        let mut m = machine();
        m.fail.push(Target::File {
            path: "proc/irq/25/smp_affinity_list".into(),
        });
        let before = m.values.borrow().clone();
        let p = plan(&profile(), &input(), &m).unwrap();
        let path = tmp("rollback");
        let mut snap = new_snapshot();
        let r = apply(&p, &m, &mut snap, &path).unwrap();
        assert!(r.failed.as_deref().unwrap().contains("needs root"), "{r:?}");
        assert_eq!(*m.values.borrow(), before, "everything rolled back");
        let rolled = r
            .outcomes
            .iter()
            .filter(|o| o.result == "rolled back")
            .count();
        assert_eq!(rolled, 4, "{r:?}");
        let saved = Snapshot::load(&path, &host(), false).unwrap();
        // The failed write stays pending; what came after was never tried.
        let states: Vec<EntryState> = saved.entries.iter().map(|e| e.state).collect();
        assert_eq!(
            states,
            [
                EntryState::RolledBack,
                EntryState::RolledBack,
                EntryState::RolledBack,
                EntryState::RolledBack,
                EntryState::Pending,
                EntryState::NotMade,
            ],
            "{saved:?}"
        );
        assert!(r.still_changed.is_empty(), "{r:?}");
        assert_eq!(
            saved
                .entries
                .iter()
                .filter(|e| e.state == EntryState::RolledBack)
                .count(),
            4,
            "{saved:?}"
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn a_rollback_that_fails_is_recorded_as_such_and_revert_restores_it() {
        let mut m = machine();
        m.fail.push(Target::File {
            path: "proc/irq/25/smp_affinity_list".into(),
        });
        // Undoing busy_poll (writing its old value back) fails.
        m.fail_value
            .borrow_mut()
            .push((sysctl("net.core.busy_poll"), "0".into()));
        let p = plan(&profile(), &input(), &m).unwrap();
        let path = tmp("rollback-fails");
        let mut snap = new_snapshot();
        let r = apply(&p, &m, &mut snap, &path).unwrap();
        assert!(r.failed.is_some(), "{r:?}");
        assert_eq!(
            r.still_changed,
            vec![sysctl("net.core.busy_poll").to_string()]
        );
        assert!(
            r.outcomes
                .iter()
                .any(|o| o.result.starts_with("ROLLBACK FAILED")),
            "{r:?}"
        );
        let saved = Snapshot::load(&path, &host(), false).unwrap();
        let states: Vec<EntryState> = saved
            .entries
            .iter()
            .filter(|e| e.target == sysctl("net.core.busy_poll"))
            .map(|e| e.state)
            .collect();
        assert_eq!(states, vec![EntryState::RollbackFailed], "{saved:?}");
        assert_ne!(
            m.read(&sysctl("net.core.busy_poll")).unwrap().as_deref(),
            Some("0")
        );
        // Once the write works again, revert restores it (it is not skipped
        // as rolled back).
        m.fail_value.borrow_mut().clear();
        let rv = revert(&saved, &m, false).unwrap();
        assert_eq!((rv.conflicts, rv.failures), (0, 0), "{rv:?}");
        assert_eq!(
            m.read(&sysctl("net.core.busy_poll")).unwrap().as_deref(),
            Some("0")
        );
        std::fs::remove_file(&path).unwrap();
    }

    #[test]
    fn revert_refuses_values_changed_since_unless_forced() {
        let m = machine();
        let p = plan(&profile(), &input(), &m).unwrap();
        let path = tmp("conflict");
        let mut snap = new_snapshot();
        apply(&p, &m, &mut snap, &path).unwrap();
        m.values
            .borrow_mut()
            .insert(sysctl("net.core.busy_poll").to_string(), "77".into());
        let r = revert(&snap, &m, false).unwrap();
        assert_eq!(r.conflicts, 1);
        let o = r
            .outcomes
            .iter()
            .find(|o| o.target == "sysctl net.core.busy_poll")
            .unwrap();
        assert!(o.result.contains("--force"), "{o:?}");
        assert_eq!(
            m.read(&sysctl("net.core.busy_poll")).unwrap().as_deref(),
            Some("77")
        );
        let r = revert(&snap, &m, true).unwrap();
        assert_eq!(r.conflicts, 0);
        assert_eq!(
            m.read(&sysctl("net.core.busy_poll")).unwrap().as_deref(),
            Some("0")
        );
        std::fs::remove_file(&path).unwrap();
    }

    /// A directory of its own for a snapshot, removed on drop.
    struct Dir(std::path::PathBuf);

    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
            let _ = std::fs::remove_file(&self.0);
            let _ = std::fs::remove_dir_all(self.0.with_extension("away"));
        }
    }

    fn dir(name: &str) -> Dir {
        let d = std::env::temp_dir().join(format!("hftnet-plan-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        std::fs::create_dir(&d).unwrap();
        Dir(d)
    }

    /// A machine whose busy_poll someone changed between the plan and the
    /// apply, and whose IRQ 24 stores another value than the one written:
    /// what the snapshot must learn during the apply.
    fn surprising_apply(d: &Dir) -> (Fake, Plan, BTreeMap<String, String>, std::path::PathBuf) {
        let mut m = machine();
        m.rounds.push((
            Target::File {
                path: "proc/irq/24/smp_affinity_list".into(),
            },
            "2-3".into(),
            "3".into(),
        ));
        let p = plan(&profile(), &input(), &m).unwrap();
        m.values
            .borrow_mut()
            .insert(sysctl("net.core.busy_poll").to_string(), "7".into());
        let before = m.values.borrow().clone();
        let path = d.0.join("snap.json");
        *m.journal.borrow_mut() = Some(path.clone());
        (m, p, before, path)
    }

    #[test]
    fn a_crash_mid_apply_leaves_a_snapshot_revert_fully_restores() {
        let d = dir("crash");
        let (m, p, before, path) = surprising_apply(&d);
        // The process dies right before the change of IRQ 25.
        *m.before_write.borrow_mut() = Some((
            Target::File {
                path: "proc/irq/25/smp_affinity_list".into(),
            },
            Box::new(|| panic!("simulated crash")),
        ));
        let mut snap = new_snapshot();
        let crashed = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            apply(&p, &m, &mut snap, &path)
        }));
        assert!(crashed.is_err(), "the apply was cut short");
        *m.journal.borrow_mut() = None;
        assert_eq!(*m.violations.borrow(), Vec::<String>::new(), "write-ahead");
        assert_ne!(*m.values.borrow(), before, "changes were made");
        let loaded = Snapshot::load(&path, &host(), false).unwrap();
        let r = revert(&loaded, &m, false).unwrap();
        assert_eq!((r.conflicts, r.failures), (0, 0), "{r:?}");
        assert_eq!(*m.values.borrow(), before, "everything restored");
    }

    #[test]
    fn a_failed_final_save_leaves_a_snapshot_revert_fully_restores() {
        let d = dir("final-save");
        let (m, p, before, path) = surprising_apply(&d);
        // Right before the last change, the snapshot's directory goes away
        // (a file takes its name): the final save fails.
        let last = p.changes.last().unwrap().target.clone();
        let (dir_path, away) = (d.0.clone(), d.0.with_extension("away"));
        let journal = d.0.join("snap.json");
        let moved = away.join("snap.json");
        let shared = m.journal.clone();
        *m.before_write.borrow_mut() = Some((
            last,
            Box::new(move || {
                std::fs::rename(&dir_path, &away).unwrap();
                std::fs::write(&dir_path, "not a directory").unwrap();
                // The write-ahead check reads the snapshot where it now is.
                *shared.borrow_mut() = Some(moved.clone());
            }),
        ));
        let mut snap = new_snapshot();
        let r = apply(&p, &m, &mut snap, &path).unwrap();
        assert!(r.snapshot_error.is_some(), "{r:?}");
        assert!(r.failed.is_none(), "{r:?}");
        *m.journal.borrow_mut() = None;
        assert_eq!(*m.violations.borrow(), Vec::<String>::new(), "write-ahead");
        std::fs::remove_file(&d.0).unwrap();
        std::fs::rename(d.0.with_extension("away"), &d.0).unwrap();
        let loaded = Snapshot::load(&journal, &host(), false).unwrap();
        let r = revert(&loaded, &m, false).unwrap();
        assert_eq!((r.conflicts, r.failures), (0, 0), "{r:?}");
        assert_eq!(*m.values.borrow(), before, "everything restored");
    }

    #[test]
    fn bad_snapshots_are_named() {
        let path = tmp("bad");
        let mut snap = new_snapshot();
        snap.entries.push(Entry {
            target: sysctl("net.core.busy_poll"),
            old: "0".into(),
            new: "50".into(),
            state: EntryState::Applied,
        });
        snap.save(&path).unwrap();
        let text = std::fs::read_to_string(&path).unwrap();
        std::fs::write(&path, &text[..text.len() / 2]).unwrap();
        let e = Snapshot::load(&path, &host(), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("not a complete hftnet snapshot"), "{e}");
        std::fs::write(&path, &text).unwrap();
        let other = HostId {
            machine_id: "zzz".into(),
            hostname: "elsewhere".into(),
        };
        let e = Snapshot::load(&path, &other, false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("taken on box") && e.contains("--force"), "{e}");
        assert!(Snapshot::load(&path, &other, true).is_ok());
        let e = Snapshot::load(Path::new("/nonexistent/snap.json"), &host(), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("/nonexistent/snap.json"), "{e}");

        // Made 0600 and never overwritten.
        use std::os::unix::fs::PermissionsExt;
        let fresh = tmp("fresh");
        let _ = std::fs::remove_file(&fresh);
        snap.create(&fresh).unwrap();
        let meta = std::fs::metadata(&fresh).unwrap();
        assert_eq!(meta.permissions().mode() & 0o777, 0o600);
        let e = snap.create(&fresh).unwrap_err().to_string();
        assert!(e.contains("never overwritten"), "{e}");
        // Writable by others, or a symbolic link: refused.
        std::fs::set_permissions(&fresh, std::fs::Permissions::from_mode(0o666)).unwrap();
        let e = Snapshot::load(&fresh, &host(), false)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains("can be written by others") && e.contains("refusing"),
            "{e}"
        );
        std::fs::set_permissions(&fresh, std::fs::Permissions::from_mode(0o600)).unwrap();
        assert!(Snapshot::load(&fresh, &host(), false).is_ok());
        let link = tmp("link");
        let _ = std::fs::remove_file(&link);
        std::os::unix::fs::symlink(&fresh, &link).unwrap();
        let e = Snapshot::load(&link, &host(), false)
            .unwrap_err()
            .to_string();
        assert!(e.contains("symbolic link"), "{e}");
        // Saving again replaces the apply's own file, not through a link.
        snap.save(&fresh).unwrap();
        assert!(Snapshot::load(&fresh, &host(), false).is_ok());
        for f in [&fresh, &link, &path] {
            std::fs::remove_file(f).unwrap();
        }
    }
}
