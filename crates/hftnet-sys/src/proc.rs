//! Processes and the files they share: whether a process ID names a live
//! process (a shared-memory ring's readers may die without a word), when a
//! process started (which tells a reused PID from the process that had it)
//! and its PID namespace, this process's effective user, and naming a file
//! made unnamed (`O_TMPFILE`).
//!
//! Layer: `hftnet-sys`, under the liveness checks of shared-memory rings.
//! Invariants: `kill(pid, 0)` sends no signal; the one signal sent
//! ([`interrupt`]) goes to a child the caller owns and has not reaped, so
//! its PID cannot have been reused; a pid of 0 or one that does not fit a
//! `pid_t` is never passed (0 and negative values name process groups).
//!
//! Must never: be trusted across PID namespaces (a pid of another namespace
//! names another process here, or none) or after enough time for the pid to
//! be reused: callers pair it with a heartbeat.

use crate::error::{Result, SyscallError};

/// Whether process `pid` exists in this PID namespace: `kill(pid, 0)`
/// succeeding or failing with `EPERM` (it exists but belongs to someone
/// else) says yes, `ESRCH` says no. A zombie (exited, not yet reaped)
/// still counts as existing.
///
/// # Errors
/// `EINVAL` for a pid of 0 or one beyond `pid_t` (they name process groups
/// or nothing), or any other error of `kill(2)`.
pub fn exists(pid: u32) -> Result<bool> {
    let Ok(p) = libc::pid_t::try_from(pid) else {
        return Err(SyscallError::from_errno("kill(pid, 0)", libc::EINVAL));
    };
    if p <= 0 {
        return Err(SyscallError::from_errno("kill(pid, 0)", libc::EINVAL));
    }
    // SAFETY: signal 0 sends nothing; `p` is a positive pid, so it names one
    // process and never a group.
    if unsafe { libc::kill(p, 0) } == 0 {
        return Ok(true);
    }
    let e = SyscallError::last("kill(pid, 0)");
    match e.errno() {
        Some(libc::EPERM) => Ok(true),
        Some(libc::ESRCH) => Ok(false),
        _ => Err(e),
    }
}

/// Sends `SIGINT` to `child` (a process this one started), so it can end
/// cleanly; does nothing once it has been reaped (`try_wait` or `wait`
/// returned its status).
///
/// # Errors
/// `EINVAL` for a PID beyond `pid_t`, or the error of `kill(2)`.
pub fn interrupt(child: &mut std::process::Child) -> Result<()> {
    // Reaped: its PID may belong to another process by now.
    if !matches!(child.try_wait(), Ok(None)) {
        return Ok(());
    }
    let Ok(p) = libc::pid_t::try_from(child.id()) else {
        return Err(SyscallError::from_errno("kill(pid, SIGINT)", libc::EINVAL));
    };
    // SAFETY: plain syscall; `p` is the positive PID of a child that is not
    // reaped yet (checked above, and `child` is borrowed mutably, so nobody
    // reaps it meanwhile): it still names that child.
    if unsafe { libc::kill(p, libc::SIGINT) } == 0 {
        Ok(())
    } else {
        Err(SyscallError::last("kill(pid, SIGINT)"))
    }
}

/// The start time of process `pid` (field 22 of `/proc/PID/stat`, in clock
/// ticks since boot), or `None` if there is no such process. Together with
/// the PID it names one process: a PID reused later has another start time.
///
/// # Errors
/// Why `/proc/PID/stat` cannot be read or parsed (other than the process
/// being gone).
pub fn start_time(pid: u32) -> std::result::Result<Option<u64>, String> {
    let path = format!("/proc/{pid}/stat");
    match std::fs::read_to_string(&path) {
        Ok(stat) => stat_start_time(&stat)
            .map(Some)
            .ok_or_else(|| format!("{path} has no start time (field 22)")),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
        // ESRCH: the process went while its file was read.
        Err(e) if e.raw_os_error() == Some(libc::ESRCH) => Ok(None),
        Err(e) => Err(format!("reading {path}: {e}")),
    }
}

/// Field 22 (`starttime`) of the text of a `/proc/PID/stat` file. The
/// fields after the command name (field 2, which may contain spaces and
/// parentheses) start with field 3 (`state`).
#[must_use]
pub fn stat_start_time(stat: &str) -> Option<u64> {
    stat.rsplit_once(')')?
        .1
        .split_whitespace()
        .nth(22 - 3)?
        .parse()
        .ok()
}

/// The inode of this process's PID namespace (`/proc/self/ns/pid`): PIDs
/// recorded by a process of another namespace name other processes here.
///
/// # Errors
/// Why `/proc/self/ns/pid` cannot be read.
pub fn pid_namespace() -> std::result::Result<u64, String> {
    use std::os::unix::fs::MetadataExt as _;
    std::fs::metadata("/proc/self/ns/pid")
        .map(|m| m.ino())
        .map_err(|e| format!("reading /proc/self/ns/pid: {e}"))
}

/// The effective user ID of this process (`geteuid`): whom the files it
/// makes belong to, and whom it trusts a shared file from.
#[must_use]
pub fn euid() -> u32 {
    // SAFETY: `geteuid` takes nothing and cannot fail.
    unsafe { libc::geteuid() }
}

/// Gives the unnamed file `fd` (opened with `O_TMPFILE`) the name `path`:
/// `linkat` through `/proc/self/fd/N` with `AT_SYMLINK_FOLLOW`, which needs
/// no privilege (unlike `AT_EMPTY_PATH`). The file appears whole, at once;
/// a process killed before this leaves nothing behind.
///
/// # Errors
/// `call = "linkat"`: `EEXIST` when `path` exists (nothing is replaced),
/// `ENOENT` without `/proc`, and the usual errors of `linkat(2)`.
pub fn link_fd(fd: std::os::fd::BorrowedFd<'_>, path: &std::path::Path) -> Result<()> {
    use std::os::fd::AsRawFd;
    use std::os::unix::ffi::OsStrExt;
    let from = std::ffi::CString::new(format!("/proc/self/fd/{}", fd.as_raw_fd()))
        .map_err(|_| SyscallError::from_errno("linkat", libc::EINVAL))?;
    let to = std::ffi::CString::new(path.as_os_str().as_bytes())
        .map_err(|_| SyscallError::from_errno("linkat", libc::EINVAL))?;
    // SAFETY: two NUL-terminated strings that live across the call; the
    // kernel only reads them.
    let r = unsafe {
        libc::linkat(
            libc::AT_FDCWD,
            from.as_ptr(),
            libc::AT_FDCWD,
            to.as_ptr(),
            libc::AT_SYMLINK_FOLLOW,
        )
    };
    if r == 0 {
        Ok(())
    } else {
        Err(SyscallError::last("linkat"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn this_process_exists_and_a_reaped_child_does_not() {
        assert!(exists(std::process::id()).unwrap());
        let mut c = std::process::Command::new("true").spawn().unwrap();
        let pid = c.id();
        c.wait().unwrap();
        assert!(!exists(pid).unwrap(), "reaped child {pid} still exists");
        assert_eq!(exists(0).unwrap_err().errno(), Some(libc::EINVAL));
        assert_eq!(exists(u32::MAX).unwrap_err().errno(), Some(libc::EINVAL));
    }

    #[test]
    fn start_time_names_one_process() {
        let me = start_time(std::process::id()).unwrap().unwrap();
        assert_eq!(start_time(std::process::id()).unwrap(), Some(me));
        let mut c = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let pid = c.id();
        let child = start_time(pid).unwrap().unwrap();
        assert!(
            child >= me,
            "child started at {child}, before its parent at {me}"
        );
        c.kill().unwrap();
        c.wait().unwrap();
        assert_eq!(start_time(pid).unwrap(), None, "reaped child {pid}");
        // A command name with spaces and parentheses does not shift fields.
        let stat = "7 (a) b (c) S 1 7 7 0 -1 4194560 1 0 0 0 0 0 0 0 20 0 1 0 4242 0 0";
        assert_eq!(stat_start_time(stat), Some(4242));
        assert_eq!(stat_start_time("7 (a) S 1"), None);
        assert!(pid_namespace().unwrap() > 0);
    }
}
