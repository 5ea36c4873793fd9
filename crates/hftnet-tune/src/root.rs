//! The one place this crate reads and writes kernel files (`/proc`, `/sys`,
//! cgroup file systems), always relative to a base directory.
//!
//! [`Root::system()`] is `/`; [`Root::at`] points at a fake tree so tests run
//! the same code on files they built in a temporary directory.
//!
//! Invariants:
//! - Paths handed to a [`Root`] are relative (`"proc/cmdline"`, never
//!   `"/proc/cmdline"`) and contain no `..`: a relative path can only name a
//!   file under the base directory. Writes additionally resolve symbolic links
//!   and refuse a target that lies outside the base ([`RootError::Escapes`]).
//! - Reading never writes. A file that does not exist reads as `None` ("not
//!   present on this kernel"), never as an error.
//! - A write is one `write(2)` of the whole value, the way `echo value > file`
//!   does it, and its error says which file, which value and what the errno
//!   means for a tuner (needs root, the kernel rejected the value, not present).
//!
//! CPU lists (`"0-3,5"`) and CPU masks (`"ff,ffffffff"`), the two formats the
//! kernel uses for sets of CPUs, are parsed and formatted by
//! [`hftnet_sys::cpus`]; they are re-exported here under the names this crate
//! has always used.

use std::fs;
use std::io::{self, Write as _};
use std::path::{Component, Path, PathBuf};

pub use hftnet_sys::cpus::{
    CpuListError, MAX_CPU, format_cpu_list, format_cpu_mask, parse_cpu_list, parse_cpu_mask,
};

/// An error reading or writing a file through a [`Root`].
#[derive(Debug, thiserror::Error)]
pub enum RootError {
    /// The path was absolute or contained `..`; only relative paths below the
    /// root are accepted.
    #[error("`{rel}`: not a relative path below the root (absolute or contains `..`)")]
    BadPath {
        /// The path as given.
        rel: String,
    },
    /// After following symbolic links the path lies outside the root.
    #[error("{path}: resolves outside the root {root}")]
    Escapes {
        /// The full path.
        path: PathBuf,
        /// The root directory.
        root: PathBuf,
    },
    /// `EACCES` / `EPERM`: the write (or read) needs root or `CAP_SYS_ADMIN`,
    /// or the file is read-only where it is (a host-wide sysctl seen from
    /// inside a network namespace).
    #[error(
        "{action} {path}: permission denied ({source}): run as root; if you are root, this file is read-only here (host-wide sysctls cannot be changed from inside a network namespace)"
    )]
    NeedsRoot {
        /// What was attempted (`"reading"`, `"writing \"1\" to"`, ...).
        action: String,
        /// The full path.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// `EINVAL`: the kernel rejected the value written.
    #[error("writing {value:?} to {path}: the kernel rejected the value ({source})")]
    Rejected {
        /// The full path.
        path: PathBuf,
        /// The value the kernel refused.
        value: String,
        /// The underlying error.
        source: io::Error,
    },
    /// `ENOENT` on a write (or on creating a directory in a missing parent):
    /// the file is not present on this kernel.
    #[error("{action} {path}: not present on this kernel")]
    NotPresent {
        /// What was attempted.
        action: String,
        /// The full path.
        path: PathBuf,
    },
    /// Any other I/O error (`EBUSY`, `EIO`, `ENOSPC`, `ESRCH`, ...), with the
    /// errno's own description.
    #[error("{action} {path}: {source}")]
    Io {
        /// What was attempted.
        action: String,
        /// The full path.
        path: PathBuf,
        /// The underlying error.
        source: io::Error,
    },
    /// A sysctl name that cannot name a file under `/proc/sys`.
    #[error("`{name}`: not a sysctl name ({reason})")]
    BadSysctlName {
        /// The name as given.
        name: String,
        /// Why it was refused.
        reason: &'static str,
    },
}

impl RootError {
    /// The raw OS error number behind this error, if there is one.
    pub fn raw_os_error(&self) -> Option<i32> {
        match self {
            RootError::NeedsRoot { source, .. }
            | RootError::Rejected { source, .. }
            | RootError::Io { source, .. } => source.raw_os_error(),
            RootError::NotPresent { .. } => Some(2),
            _ => None,
        }
    }
}

/// A base directory that every `/proc` and `/sys` access of this crate goes
/// through. See the [module documentation](self) for its invariants.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Root {
    base: PathBuf,
}

impl Root {
    /// The running system: paths are relative to `/`.
    pub fn system() -> Root {
        Root {
            base: PathBuf::from("/"),
        }
    }

    /// A fake tree rooted at `dir` (for tests): `"proc/cmdline"` is
    /// `dir/proc/cmdline`.
    pub fn at(dir: impl Into<PathBuf>) -> Root {
        Root { base: dir.into() }
    }

    /// The base directory.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// The full path of `rel`.
    ///
    /// # Errors
    /// [`RootError::BadPath`] when `rel` is absolute, empty or contains `..`.
    pub fn path(&self, rel: &str) -> Result<PathBuf, RootError> {
        let p = Path::new(rel);
        let ok = !rel.is_empty()
            && p.components()
                .all(|c| matches!(c, Component::Normal(_) | Component::CurDir));
        if !ok {
            return Err(RootError::BadPath {
                rel: rel.to_owned(),
            });
        }
        Ok(self.base.join(p))
    }

    /// Reads `rel` and trims surrounding whitespace. `Ok(None)` when the file
    /// does not exist (or a `/proc/PID` entry vanished meanwhile).
    ///
    /// # Errors
    /// [`RootError::NeedsRoot`] when not readable by this user,
    /// [`RootError::Io`] for other failures (for example reading a directory).
    pub fn read(&self, rel: &str) -> Result<Option<String>, RootError> {
        let path = self.path(rel)?;
        match fs::read(&path) {
            Ok(bytes) => Ok(Some(String::from_utf8_lossy(&bytes).trim().to_owned())),
            Err(e) if is_absent(&e) => Ok(None),
            Err(e) => Err(classify("reading".into(), path, None, e)),
        }
    }

    /// Whether `rel` exists (file, directory or the target of a link).
    pub fn exists(&self, rel: &str) -> bool {
        self.path(rel).map(|p| p.exists()).unwrap_or(false)
    }

    /// Whether `rel` is a directory.
    pub fn is_dir(&self, rel: &str) -> bool {
        self.path(rel).map(|p| p.is_dir()).unwrap_or(false)
    }

    /// The device and inode of the directory `rel` (not following a final
    /// symbolic link); `Ok(None)` when it does not exist.
    ///
    /// # Errors
    /// [`RootError::Io`] when `rel` is not a directory, or cannot be
    /// examined.
    pub fn dir_id(&self, rel: &str) -> Result<Option<crate::scope::DirId>, RootError> {
        use std::os::unix::fs::MetadataExt as _;
        let path = self.path(rel)?;
        match fs::symlink_metadata(&path) {
            Ok(m) if m.is_dir() => Ok(Some(crate::scope::DirId {
                dev: m.dev(),
                ino: m.ino(),
            })),
            Ok(_) => Err(RootError::Io {
                action: "examining".into(),
                path,
                source: io::Error::other("not a directory"),
            }),
            Err(e) if is_absent(&e) => Ok(None),
            Err(e) => Err(classify("examining".into(), path, None, e)),
        }
    }

    /// Whether `rel` is a regular file with an execute bit set.
    pub fn is_executable(&self, rel: &str) -> bool {
        use std::os::unix::fs::PermissionsExt as _;
        self.path(rel)
            .ok()
            .and_then(|p| fs::metadata(p).ok())
            .is_some_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
    }

    /// The names in directory `rel_dir`, sorted (numerically where both names
    /// are numbers, so `proc/irq` lists `2` before `10`). `Ok(None)` when the
    /// directory does not exist.
    ///
    /// # Errors
    /// [`RootError::NeedsRoot`] or [`RootError::Io`] when it cannot be listed.
    pub fn list(&self, rel_dir: &str) -> Result<Option<Vec<String>>, RootError> {
        let path = self.path(rel_dir)?;
        let rd = match fs::read_dir(&path) {
            Ok(rd) => rd,
            Err(e) if is_absent(&e) => return Ok(None),
            Err(e) => return Err(classify("listing".into(), path, None, e)),
        };
        let mut names = Vec::new();
        for entry in rd {
            match entry {
                Ok(e) => names.push(e.file_name().to_string_lossy().into_owned()),
                Err(e) if is_absent(&e) => {}
                Err(e) => return Err(classify("listing".into(), path, None, e)),
            }
        }
        names.sort_by(|a, b| match (a.parse::<u64>(), b.parse::<u64>()) {
            (Ok(x), Ok(y)) => x.cmp(&y),
            _ => a.cmp(b),
        });
        Ok(Some(names))
    }

    /// Follows the symbolic links of `rel` and returns the path it names,
    /// relative to the root (`"sys/class/net/eth0/device"` →
    /// `"sys/devices/pci0000:00/0000:00:03.0/virtio2"`). `Ok(None)` when it does
    /// not exist.
    ///
    /// # Errors
    /// [`RootError::Escapes`] when the target is outside the root.
    pub fn resolve(&self, rel: &str) -> Result<Option<String>, RootError> {
        let path = self.path(rel)?;
        let target = match fs::canonicalize(&path) {
            Ok(t) => t,
            Err(e) if is_absent(&e) => return Ok(None),
            Err(e) => return Err(classify("resolving".into(), path, None, e)),
        };
        let base = self.canonical_base()?;
        match target.strip_prefix(&base) {
            Ok(r) => Ok(Some(r.to_string_lossy().into_owned())),
            Err(_) => Err(RootError::Escapes {
                path: target,
                root: base,
            }),
        }
    }

    /// Writes `value` to the existing file `rel` in one `write(2)` (the file is
    /// opened for writing and truncated, never created).
    ///
    /// # Errors
    /// [`RootError::NeedsRoot`] (`EACCES`/`EPERM`), [`RootError::Rejected`]
    /// (`EINVAL`), [`RootError::NotPresent`] (`ENOENT`), [`RootError::Escapes`]
    /// (a link pointing outside the root) or [`RootError::Io`] for any other
    /// errno, each naming the path.
    pub fn write(&self, rel: &str, value: &str) -> Result<(), RootError> {
        let path = self.path(rel)?;
        let action = format!("writing {value:?} to");
        self.check_inside(&path, &action)?;
        if self.base != Path::new("/") {
            return self.write_fake(&path, value, action);
        }
        let mut f = fs::OpenOptions::new()
            .write(true)
            .truncate(true)
            .open(&path)
            .map_err(|e| classify(action.clone(), path.clone(), Some(value), e))?;
        f.write_all(value.as_bytes())
            .map_err(|e| classify(action, path, Some(value), e))
    }

    /// A write to a fake tree is whole or not made, as a write to a
    /// `/proc` or `/sys` attribute is (one `write` the kernel takes or
    /// refuses): the new value goes to a file beside it, renamed over it.
    /// A process killed mid-write (the SIGKILL tests) cannot leave the
    /// empty file a truncating write would.
    fn write_fake(&self, path: &Path, value: &str, action: String) -> Result<(), RootError> {
        // Only an existing file is written, as in `/proc` and `/sys`.
        fs::metadata(path)
            .map_err(|e| classify(action.clone(), path.to_path_buf(), Some(value), e))?;
        let mut name = path.file_name().unwrap_or_default().to_os_string();
        name.push(format!(".{}.new", std::process::id()));
        let tmp = path.with_file_name(name);
        let done = fs::write(&tmp, value.as_bytes()).and_then(|()| fs::rename(&tmp, path));
        if done.is_err() {
            let _ = fs::remove_file(&tmp);
        }
        done.map_err(|e| classify(action, path.to_path_buf(), Some(value), e))
    }

    /// Creates the directory `rel` (a cgroup). Its parent must exist.
    ///
    /// # Errors
    /// As for [`Root::write`]; `EEXIST` is an [`RootError::Io`].
    pub fn create_dir(&self, rel: &str) -> Result<(), RootError> {
        let path = self.path(rel)?;
        let action = "creating directory".to_owned();
        self.check_inside(&path, &action)?;
        fs::create_dir(&path).map_err(|e| classify(action, path, None, e))
    }

    /// Removes the empty directory `rel` (a cgroup; cgroup directories count as
    /// empty when they hold no tasks and no child cgroups).
    ///
    /// # Errors
    /// As for [`Root::write`]; `EBUSY` (tasks still inside) is an
    /// [`RootError::Io`].
    pub fn remove_dir(&self, rel: &str) -> Result<(), RootError> {
        let path = self.path(rel)?;
        let action = "removing directory".to_owned();
        self.check_inside(&path, &action)?;
        fs::remove_dir(&path).map_err(|e| classify(action, path, None, e))
    }

    /// Reads the sysctl `name` (`"net.core.busy_poll"`), with multi-value
    /// sysctls (`net.ipv4.tcp_rmem`) normalized to single spaces. `Ok(None)`
    /// when the sysctl is not present on this kernel.
    ///
    /// # Errors
    /// [`RootError::BadSysctlName`], or as for [`Root::read`].
    pub fn sysctl_get(&self, name: &str) -> Result<Option<String>, RootError> {
        Ok(self
            .read(&sysctl_path(name)?)?
            .map(|v| normalize_spaces(&v)))
    }

    /// Writes the sysctl `name`.
    ///
    /// # Errors
    /// [`RootError::BadSysctlName`], or as for [`Root::write`].
    pub fn sysctl_set(&self, name: &str, value: &str) -> Result<(), RootError> {
        self.write(&sysctl_path(name)?, value)
    }

    fn canonical_base(&self) -> Result<PathBuf, RootError> {
        fs::canonicalize(&self.base)
            .map_err(|e| classify("resolving".into(), self.base.clone(), None, e))
    }

    /// Refuses a path whose existing part resolves outside the base.
    fn check_inside(&self, path: &Path, action: &str) -> Result<(), RootError> {
        let base = self.canonical_base()?;
        // The file itself may not exist yet (create_dir): check the nearest
        // existing ancestor, after following links.
        let mut probe = path.to_path_buf();
        let resolved = loop {
            match fs::canonicalize(&probe) {
                Ok(r) => break r,
                Err(_) => {
                    if !probe.pop() {
                        return Err(RootError::NotPresent {
                            action: action.to_owned(),
                            path: path.to_path_buf(),
                        });
                    }
                }
            }
        };
        if resolved.starts_with(&base) {
            Ok(())
        } else {
            Err(RootError::Escapes {
                path: resolved,
                root: base,
            })
        }
    }
}

fn is_absent(e: &io::Error) -> bool {
    // ESRCH: a /proc/PID entry whose task exited between listing and reading.
    e.kind() == io::ErrorKind::NotFound || e.raw_os_error() == Some(3)
}

fn classify(action: String, path: PathBuf, value: Option<&str>, e: io::Error) -> RootError {
    const EPERM: i32 = 1;
    const ENOENT: i32 = 2;
    const EACCES: i32 = 13;
    const EINVAL: i32 = 22;
    match e.raw_os_error() {
        Some(EPERM | EACCES) => RootError::NeedsRoot {
            action,
            path,
            source: e,
        },
        Some(EINVAL) if value.is_some() => RootError::Rejected {
            path,
            value: value.unwrap_or_default().to_owned(),
            source: e,
        },
        Some(ENOENT) => RootError::NotPresent { action, path },
        _ => RootError::Io {
            action,
            path,
            source: e,
        },
    }
}

/// Collapses runs of whitespace (tabs in `tcp_rmem`) into single spaces and
/// trims the ends.
pub fn normalize_spaces(s: &str) -> String {
    s.split_whitespace().collect::<Vec<_>>().join(" ")
}

/// The file of sysctl `name` relative to the root:
/// `"net.core.busy_poll"` → `"proc/sys/net/core/busy_poll"`.
///
/// As in `sysctl(8)`, a `/` inside a dotted name stands for a dot in one
/// component (`"net.ipv4.conf.eth0/100.rp_filter"` names the VLAN
/// `eth0.100`), and a name written with slashes only (`"net/core/busy_poll"`)
/// is taken as a path.
///
/// # Errors
/// [`RootError::BadSysctlName`] for an empty name, an empty component, or a
/// component `.` / `..`.
pub fn sysctl_path(name: &str) -> Result<String, RootError> {
    let bad = |reason| RootError::BadSysctlName {
        name: name.to_owned(),
        reason,
    };
    let name_t = name.trim();
    if name_t.is_empty() {
        return Err(bad("empty"));
    }
    let parts: Vec<String> = if name_t.contains('.') {
        name_t.split('.').map(|c| c.replace('/', ".")).collect()
    } else {
        name_t.split('/').map(str::to_owned).collect()
    };
    let mut out = String::from("proc/sys");
    for p in &parts {
        if p.is_empty() {
            return Err(bad("empty component"));
        }
        if p == "." || p == ".." || p.chars().any(char::is_whitespace) {
            return Err(bad("component is `.`, `..` or contains whitespace"));
        }
        out.push('/');
        out.push_str(p);
    }
    Ok(out)
}

/// The value between brackets of a sysfs choice file:
/// `"always [madvise] never"` → `Some("madvise")`.
pub fn bracketed(s: &str) -> Option<&str> {
    let start = s.find('[')? + 1;
    let end = start + s[start..].find(']')?;
    Some(&s[start..end])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sysctl_paths() {
        assert_eq!(
            sysctl_path("net.core.busy_poll").unwrap(),
            "proc/sys/net/core/busy_poll"
        );
        assert_eq!(
            sysctl_path("net.ipv4.conf.eth0/100.rp_filter").unwrap(),
            "proc/sys/net/ipv4/conf/eth0.100/rp_filter"
        );
        assert_eq!(
            sysctl_path("vm/swappiness").unwrap(),
            "proc/sys/vm/swappiness"
        );
        assert!(sysctl_path("net..core").is_err());
        assert!(sysctl_path("").is_err());
        assert!(sysctl_path("../etc").is_err());
    }

    #[test]
    fn paths_stay_relative() {
        let r = Root::at("/tmp/x");
        assert!(r.path("/proc/cmdline").is_err());
        assert!(r.path("proc/../../etc").is_err());
        assert_eq!(
            r.path("proc/cmdline").unwrap(),
            Path::new("/tmp/x/proc/cmdline")
        );
    }

    #[test]
    fn errno_meanings() {
        let e = |n| io::Error::from_raw_os_error(n);
        let p = || PathBuf::from("/proc/sys/net/core/busy_poll");
        let w = "writing \"50\" to".to_owned();
        let msg = classify(w.clone(), p(), Some("50"), e(13)).to_string();
        assert!(
            msg.starts_with("writing \"50\" to /proc/sys/net/core/busy_poll: permission denied"),
            "{msg}"
        );
        assert!(matches!(
            classify(w.clone(), p(), Some("50"), e(1)),
            RootError::NeedsRoot { .. }
        ));
        let msg = classify(w.clone(), p(), Some("50"), e(22)).to_string();
        assert!(
            msg.starts_with(
                "writing \"50\" to /proc/sys/net/core/busy_poll: the kernel rejected the value"
            ),
            "{msg}"
        );
        assert_eq!(
            classify(w.clone(), p(), Some("50"), e(2)).to_string(),
            "writing \"50\" to /proc/sys/net/core/busy_poll: not present on this kernel"
        );
        let busy = classify(w, p(), Some("50"), e(16));
        assert_eq!(busy.raw_os_error(), Some(16));
        assert!(busy.to_string().contains("busy"), "{busy}");
    }

    #[test]
    fn brackets() {
        assert_eq!(bracketed("always [madvise] never"), Some("madvise"));
        assert_eq!(bracketed("never"), None);
    }
}
