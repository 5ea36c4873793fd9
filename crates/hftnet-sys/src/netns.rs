//! Named network namespaces, created and removed the way iproute2's
//! `ip netns add` / `ip netns del` do, so `ip netns list` and `ip netns exec`
//! see and use the namespaces made here (and we see theirs).
//!
//! Layer: syscall wrappers (`mkdir`, `flock`, `mount`, `unshare`, `setns`,
//! `umount2`, `unlink`, `if_nametoindex`), used by `hftnet-lab`.
//!
//! Invariants: a named namespace is the file `/run/netns/NAME` with the
//! namespace bind-mounted on it; `/run/netns` is a shared mount point so the
//! unmount on delete propagates to other mount namespaces. [`add`] creates the
//! namespace on a short-lived helper thread, so the calling thread never
//! changes namespace; only [`setns`] moves the *calling thread*, and only when
//! asked to. Network namespaces are per thread: other threads of the process
//! are never affected.
//!
//! Must never: touch an interface, route or sysctl of any namespace (that is
//! [`crate::netlink`]'s job, on explicit request), accept a name that could
//! escape `/run/netns` (`/`, `.`, `..`), or fail [`delete`] for a namespace
//! that is already gone.
//!
//! Every function here allocates (paths, C strings, a helper thread) and is
//! meant for setup and teardown, never for a hot path.
//!
//! # References
//! - iproute2 `ip/ipnetns.c` (`netns_add`, `on_netns_del`)
//! - `unshare(2)`, `setns(2)`, `mount(2)`, `umount2(2)`, `namespaces(7)`

use std::ffi::{CString, OsStr};
use std::fs;
use std::io;
use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};
use std::os::unix::ffi::OsStrExt;
use std::path::PathBuf;

use crate::error::{Result, SyscallError, cvt};

/// Directory holding one bind-mounted file per named network namespace, the
/// same one iproute2 uses (`NETNS_RUN_DIR`).
pub const NETNS_RUN_DIR: &str = "/run/netns";

/// Longest accepted namespace name: `NAME_MAX`, as in iproute2.
pub const MAX_NAME_LEN: usize = 255;

/// True if `name` is acceptable as a namespace name: not empty, at most
/// [`MAX_NAME_LEN`] bytes, no `/` or NUL, and not `.` or `..` (the rule of
/// iproute2's `is_valid_netns_name`, plus NUL which a C string cannot hold).
#[must_use]
pub fn is_valid_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && !name.contains(['/', '\0'])
        && name != "."
        && name != ".."
}

/// The path of the file that pins namespace `name`: `/run/netns/NAME`.
///
/// It does not check `name`; [`add`], [`delete`] and [`open`] do.
#[must_use]
pub fn path(name: &str) -> PathBuf {
    PathBuf::from(NETNS_RUN_DIR).join(name)
}

fn checked_path(call: &'static str, name: &str) -> Result<CString> {
    if !is_valid_name(name) {
        return Err(SyscallError::from_errno(call, libc::EINVAL));
    }
    c_path(call, path(name).as_os_str())
}

fn c_path(call: &'static str, p: &OsStr) -> Result<CString> {
    CString::new(p.as_bytes()).map_err(|_| SyscallError::from_errno(call, libc::EINVAL))
}

/// Creates the named network namespace `name`, like `ip netns add NAME`.
///
/// Steps, mirroring iproute2: `mkdir -p /run/netns` (mode 0755); under an
/// exclusive `flock` on that directory, make it a shared mount, first
/// bind-mounting it on itself if it is not a mount point yet (the lock keeps
/// parallel callers from stacking bind mounts); create the empty file
/// `/run/netns/NAME` with `O_EXCL`; then, on a fresh thread,
/// `unshare(CLONE_NEWNET)` and bind-mount `/proc/thread-self/ns/net` onto
/// the file. The helper thread exits; the mount keeps the namespace alive.
/// The calling thread's namespace is not changed.
///
/// The new namespace has only a `lo` interface, down.
///
/// # Errors
/// - `EINVAL` (call `"netns add: invalid name"`) if [`is_valid_name`] is false;
/// - `EEXIST` (call `"open(/run/netns/NAME, O_CREAT|O_EXCL)"`) if a namespace
///   of that name exists already;
/// - `EPERM` from `mount` or `unshare` without `CAP_SYS_ADMIN`;
/// - any error of the calls listed above, naming the call. After a failure
///   past the file creation, the file is removed again.
pub fn add(name: &str) -> Result<()> {
    let ns_path = checked_path("netns add: invalid name", name)?;
    let run_dir = c_path("netns add", OsStr::new(NETNS_RUN_DIR))?;

    // mkdir -p /run/netns (its parent /run always exists on a Linux system).
    // SAFETY: `run_dir` is a valid NUL-terminated C string that outlives the call.
    let ret = unsafe { libc::mkdir(run_dir.as_ptr(), 0o755) };
    if ret == -1 {
        let err = SyscallError::last("mkdir(/run/netns)");
        if err.errno() != Some(libc::EEXIST) {
            return Err(err);
        }
    }

    make_run_dir_shared(&run_dir)?;

    // Create the filesystem state: an empty file to bind the namespace onto.
    // SAFETY: `ns_path` is a valid C string; the returned fd is owned below.
    let fd = cvt("open(/run/netns/NAME, O_CREAT|O_EXCL)", unsafe {
        libc::open(
            ns_path.as_ptr(),
            libc::O_RDONLY | libc::O_CREAT | libc::O_EXCL | libc::O_CLOEXEC,
            0 as libc::c_uint,
        )
    })?;
    // SAFETY: `open` succeeded, so `fd` is a fresh descriptor nobody else owns.
    drop(unsafe { OwnedFd::from_raw_fd(fd) });

    let bind_path = ns_path.clone();
    let joined = std::thread::Builder::new()
        .name("hft-netns-add".into())
        .spawn(move || create_and_bind(&bind_path))
        .map_err(|e| SyscallError {
            call: "clone(netns add helper thread)",
            io_error: e,
        })
        .and_then(|handle| match handle.join() {
            Ok(result) => result,
            Err(payload) => std::panic::resume_unwind(payload),
        });
    if let Err(err) = joined {
        // Like iproute2's out_delete: leave no file (nor mount) behind.
        let _ = delete(name);
        return Err(err);
    }
    Ok(())
}

/// Runs on the helper thread of [`add`]: moves that thread (only) into a new
/// network namespace and pins the namespace on `ns_path`.
fn create_and_bind(ns_path: &CString) -> Result<()> {
    // SAFETY: plain syscall without pointers. It changes the namespace of this
    // helper thread only; the thread exits right after.
    cvt("unshare(CLONE_NEWNET)", unsafe {
        libc::unshare(libc::CLONE_NEWNET)
    })?;
    let source = c"/proc/thread-self/ns/net";
    // SAFETY: all pointers are valid NUL-terminated C strings (or null for
    // `data`, which MS_BIND ignores) that outlive the call.
    let ret = unsafe {
        libc::mount(
            source.as_ptr(),
            ns_path.as_ptr(),
            c"none".as_ptr(),
            libc::MS_BIND,
            std::ptr::null(),
        )
    };
    cvt(
        "mount(/proc/thread-self/ns/net, /run/netns/NAME, MS_BIND)",
        ret,
    )?;
    Ok(())
}

/// Makes `/run/netns` a shared mount point (iproute2's logic in `netns_add`):
/// try `mount --make-rshared`; if that fails with `EINVAL` the directory is
/// not a mount point yet, so bind-mount it on itself once and try again.
/// An exclusive `flock` on the directory serialises this against other
/// processes (and threads) doing the same; as in iproute2, failing to take
/// the lock is not fatal.
fn make_run_dir_shared(run_dir: &CString) -> Result<()> {
    // SAFETY: `run_dir` is a valid C string; the fd is owned right below.
    let lock_fd = cvt("open(/run/netns, O_DIRECTORY)", unsafe {
        libc::open(
            run_dir.as_ptr(),
            libc::O_RDONLY | libc::O_DIRECTORY | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: `open` succeeded, so `lock_fd` is a fresh descriptor we own. Dropping
    // it (on every return path) closes it, which also releases the flock.
    let lock = unsafe { OwnedFd::from_raw_fd(lock_fd) };
    // SAFETY: `lock` is an open descriptor for the duration of the call.
    // A failure is tolerated, like iproute2 (which only warns).
    let _ = unsafe { libc::flock(lock.as_raw_fd(), libc::LOCK_EX) };

    let mut made_mount_point = false;
    loop {
        // SAFETY: valid C strings; `data` may be null; MS_SHARED|MS_REC only
        // changes propagation of the existing mount at `run_dir`.
        let ret = unsafe {
            libc::mount(
                c"".as_ptr(),
                run_dir.as_ptr(),
                c"none".as_ptr(),
                libc::MS_SHARED | libc::MS_REC,
                std::ptr::null(),
            )
        };
        if ret == 0 {
            return Ok(());
        }
        let err = SyscallError::last("mount(/run/netns, MS_SHARED|MS_REC)");
        if err.errno() != Some(libc::EINVAL) || made_mount_point {
            return Err(err);
        }
        // Not a mount point yet: upgrade /run/netns to one.
        // SAFETY: valid C strings; `data` may be null for MS_BIND.
        cvt("mount(/run/netns, /run/netns, MS_BIND|MS_REC)", unsafe {
            libc::mount(
                run_dir.as_ptr(),
                run_dir.as_ptr(),
                c"none".as_ptr(),
                libc::MS_BIND | libc::MS_REC,
                std::ptr::null(),
            )
        })?;
        made_mount_point = true;
    }
}

/// Removes the named network namespace `name`, like `ip netns del NAME`:
/// `umount2(/run/netns/NAME, MNT_DETACH)` then `unlink`. The namespace itself
/// is freed by the kernel once nothing else holds it (no process or thread
/// inside, no open fd or socket of it); its interfaces go with it (a veth
/// pair is destroyed with either end).
///
/// Idempotent: a namespace that does not exist (any more) is `Ok`. A plain
/// file left by an interrupted [`add`] is removed too.
///
/// # Errors
/// `EINVAL` (call `"netns del: invalid name"`) for an invalid name; the
/// `unlink` error otherwise (e.g. `EBUSY` if the unmount was refused,
/// `EACCES`/`EPERM` without privilege).
pub fn delete(name: &str) -> Result<()> {
    let ns_path = checked_path("netns del: invalid name", name)?;
    // SAFETY: `ns_path` is a valid C string. Errors (EINVAL: not a mount
    // point, ENOENT: gone) are ignored, as in iproute2; `unlink` reports
    // anything that matters.
    let _ = unsafe { libc::umount2(ns_path.as_ptr(), libc::MNT_DETACH) };
    // SAFETY: `ns_path` is a valid C string.
    let ret = unsafe { libc::unlink(ns_path.as_ptr()) };
    if ret == -1 {
        let err = SyscallError::last("unlink(/run/netns/NAME)");
        if err.errno() != Some(libc::ENOENT) {
            return Err(err);
        }
    }
    Ok(())
}

/// Names of the namespaces in `/run/netns` (what `ip netns list` shows),
/// sorted. A missing `/run/netns` means no namespaces: `Ok(vec![])`.
///
/// # Errors
/// `opendir`/`readdir` errors other than `ENOENT` (call `"readdir(/run/netns)"`).
pub fn list() -> Result<Vec<String>> {
    let call = "readdir(/run/netns)";
    let entries = match fs::read_dir(NETNS_RUN_DIR) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(SyscallError { call, io_error: e }),
    };
    let mut names = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| SyscallError { call, io_error: e })?;
        // Names that are not UTF-8 cannot be ours; skip them.
        if let Ok(name) = entry.file_name().into_string() {
            names.push(name);
        }
    }
    names.sort();
    Ok(names)
}

/// True if `/run/netns/NAME` exists (as any kind of file).
#[must_use]
pub fn exists(name: &str) -> bool {
    is_valid_name(name) && fs::symlink_metadata(path(name)).is_ok()
}

/// Opens a file descriptor referring to namespace `name`
/// (`open("/run/netns/NAME", O_RDONLY|O_CLOEXEC)`), for [`setns`] or for
/// `IFLA_NET_NS_FD` in a netlink request. Holding it keeps the namespace
/// alive even after [`delete`].
///
/// # Errors
/// `EINVAL` for an invalid name, `ENOENT` if there is no such namespace
/// (call `"open(/run/netns/NAME)"`).
pub fn open(name: &str) -> Result<OwnedFd> {
    let ns_path = checked_path("open(/run/netns/NAME): invalid name", name)?;
    // SAFETY: `ns_path` is a valid C string; the returned fd is owned below.
    let fd = cvt("open(/run/netns/NAME)", unsafe {
        libc::open(ns_path.as_ptr(), libc::O_RDONLY | libc::O_CLOEXEC)
    })?;
    // SAFETY: `open` succeeded, so `fd` is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Opens the calling thread's current network namespace
/// (`/proc/thread-self/ns/net`), e.g. to return to it later with [`setns`].
///
/// # Errors
/// The `open` error (call `"open(/proc/thread-self/ns/net)"`).
pub fn open_current() -> Result<OwnedFd> {
    // SAFETY: the path is a valid C string literal; the fd is owned below.
    let fd = cvt("open(/proc/thread-self/ns/net)", unsafe {
        libc::open(
            c"/proc/thread-self/ns/net".as_ptr(),
            libc::O_RDONLY | libc::O_CLOEXEC,
        )
    })?;
    // SAFETY: `open` succeeded, so `fd` is a fresh descriptor nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// Moves the **calling thread** into the network namespace `fd` refers to:
/// `setns(fd, CLONE_NEWNET)`. Other threads are not affected; sockets the
/// thread creates afterwards belong to that namespace, and so do processes it
/// forks (they inherit the thread's namespace).
///
/// Prefer a dedicated thread: a pooled thread moved into a lab namespace and
/// handed back would surprise its next user.
///
/// # Errors
/// `EINVAL` if `fd` is not a network namespace, `EPERM` without
/// `CAP_SYS_ADMIN` (call `"setns(CLONE_NEWNET)"`).
pub fn setns(fd: BorrowedFd<'_>) -> Result<()> {
    // SAFETY: `fd` is a borrowed, open descriptor for the duration of the call;
    // setns only changes the calling thread's namespace.
    cvt("setns(CLONE_NEWNET)", unsafe {
        libc::setns(fd.as_raw_fd(), libc::CLONE_NEWNET)
    })?;
    Ok(())
}

/// Index of interface `name` in the calling thread's network namespace
/// (`if_nametoindex(3)`).
///
/// # Errors
/// `ENODEV` if there is no such interface, `EINVAL` if the name contains a
/// NUL byte (call `"if_nametoindex"`).
pub fn if_nametoindex(name: &str) -> Result<u32> {
    let call = "if_nametoindex";
    let c_name = CString::new(name).map_err(|_| SyscallError::from_errno(call, libc::EINVAL))?;
    // SAFETY: `c_name` is a valid C string that outlives the call.
    let index = unsafe { libc::if_nametoindex(c_name.as_ptr()) };
    if index == 0 {
        Err(SyscallError::last(call))
    } else {
        Ok(index)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names() {
        assert!(is_valid_name("hft-a-trader"));
        assert!(!is_valid_name(""));
        assert!(!is_valid_name("."));
        assert!(!is_valid_name(".."));
        assert!(!is_valid_name("a/b"));
        assert!(!is_valid_name("a\0b"));
        assert!(is_valid_name(&"x".repeat(MAX_NAME_LEN)));
        assert!(!is_valid_name(&"x".repeat(MAX_NAME_LEN + 1)));
        assert_eq!(path("x"), PathBuf::from("/run/netns/x"));
    }

    #[test]
    fn invalid_names_are_rejected_before_any_syscall() {
        assert_eq!(add("../etc").unwrap_err().errno(), Some(libc::EINVAL));
        assert_eq!(delete("..").unwrap_err().errno(), Some(libc::EINVAL));
        assert_eq!(open("").unwrap_err().errno(), Some(libc::EINVAL));
    }

    #[test]
    fn lo_exists_in_current_namespace() {
        assert!(if_nametoindex("lo").unwrap() >= 1);
        assert_eq!(
            if_nametoindex("no-such-if-hft").unwrap_err().errno(),
            Some(libc::ENODEV)
        );
    }
}
