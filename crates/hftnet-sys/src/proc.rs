//! Processes: whether a process ID names a live process, for peers that
//! share memory with us and may have died without a word (a shared-memory
//! ring's writer or readers).
//!
//! Layer: `hftnet-sys`, under the liveness checks of shared-memory rings.
//! Invariants: only `kill(pid, 0)` is used, which sends no signal; a pid
//! of 0 or one that does not fit a `pid_t` is never passed (0 and negative
//! values name process groups).
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
}
