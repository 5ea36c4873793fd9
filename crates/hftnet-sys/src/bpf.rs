//! The few `bpf(2)` link commands aya 0.14 does not expose: opening a link
//! by id, replacing a link's program atomically with a compare-and-swap on
//! the old one, and detaching a link whoever else holds it. Used by the XDP
//! steering of `hftnet-io` to take over a link it owns instead of detaching
//! and re-attaching (which would leave the interface without a program in
//! between).
//!
//! Layer: raw syscalls, one `unsafe` block each; the `bpf_attr` unions are
//! built as zeroed `u32` arrays with the fields at the offsets of
//! `include/uapi/linux/bpf.h` (all the fields used are `__u32`).
//!
//! # References
//! - `bpf(2)`; `include/uapi/linux/bpf.h` (`BPF_LINK_UPDATE`,
//!   `BPF_LINK_GET_FD_BY_ID`, `BPF_LINK_DETACH`, `BPF_F_REPLACE`)
//! - `kernel/bpf/syscall.c` (`link_update`, `bpf_link_get_fd_by_id`,
//!   `link_detach`), `net/core/dev.c` (`bpf_xdp_link_update`,
//!   `bpf_xdp_link_detach`)

use std::os::fd::{AsRawFd, BorrowedFd, FromRawFd, OwnedFd};

use crate::error::{Result, SyscallError};

// enum bpf_cmd
const BPF_LINK_UPDATE: libc::c_long = 29;
const BPF_LINK_GET_FD_BY_ID: libc::c_long = 30;
const BPF_LINK_DETACH: libc::c_long = 34;
/// `BPF_F_REPLACE`: update only if the link's program is `old_prog_fd`'s.
const BPF_F_REPLACE: u32 = 1 << 2;

/// `bpf(cmd, attr, sizeof attr)` with `attr` a zero-padded array of `u32`.
fn bpf(call: &'static str, cmd: libc::c_long, attr: &mut [u32; 8]) -> Result<i64> {
    // SAFETY: `attr` is a valid, writable buffer of the size passed; the
    // kernel reads at most that many bytes of it (and checks that the rest
    // of its own `union bpf_attr` is zero).
    let r = unsafe {
        libc::syscall(
            libc::SYS_bpf,
            cmd,
            attr.as_mut_ptr(),
            std::mem::size_of_val(attr) as libc::c_uint,
        )
    };
    if r < 0 {
        Err(SyscallError::last(call))
    } else {
        Ok(r)
    }
}

fn fd_u32(fd: BorrowedFd<'_>) -> u32 {
    // Descriptors are never negative.
    u32::try_from(fd.as_raw_fd()).unwrap_or(u32::MAX)
}

/// `BPF_LINK_GET_FD_BY_ID`: a descriptor of link `id` (which keeps the link
/// alive while open). Needs `CAP_SYS_ADMIN`. Linux ≥ 5.8.
///
/// # Errors
/// `ENOENT` if no such link, `EPERM` without the capability.
pub fn link_fd_by_id(id: u32) -> Result<OwnedFd> {
    // struct { __u32 link_id; __u32 next_id; __u32 open_flags; }
    let mut attr = [0u32; 8];
    attr[0] = id;
    let fd = bpf(
        "bpf(BPF_LINK_GET_FD_BY_ID)",
        BPF_LINK_GET_FD_BY_ID,
        &mut attr,
    )?;
    let fd = i32::try_from(fd)
        .map_err(|_| SyscallError::from_errno("bpf(BPF_LINK_GET_FD_BY_ID)", libc::EBADF))?;
    // SAFETY: the kernel returned a fresh descriptor that nobody else owns.
    Ok(unsafe { OwnedFd::from_raw_fd(fd) })
}

/// `BPF_LINK_UPDATE` with `BPF_F_REPLACE`: makes `link` run `new_prog`
/// instead of `old_prog`, in one step — the attachment point never runs
/// without a program — and only if it still runs `old_prog`. Linux ≥ 5.7
/// (XDP links: 5.9).
///
/// # Errors
/// `EPERM` if the link's program is not `old_prog` (someone changed it),
/// `ENOLINK` if the link was detached, `EINVAL` for a program of another
/// type or attach type.
pub fn link_update(
    link: BorrowedFd<'_>,
    new_prog: BorrowedFd<'_>,
    old_prog: BorrowedFd<'_>,
) -> Result<()> {
    // struct { __u32 link_fd; __u32 new_prog_fd; __u32 flags; __u32 old_prog_fd; }
    let mut attr = [0u32; 8];
    attr[0] = fd_u32(link);
    attr[1] = fd_u32(new_prog);
    attr[2] = BPF_F_REPLACE;
    attr[3] = fd_u32(old_prog);
    bpf("bpf(BPF_LINK_UPDATE)", BPF_LINK_UPDATE, &mut attr).map(|_| ())
}

/// `BPF_LINK_DETACH`: detaches `link` from its attachment point now, even
/// if other descriptors of it are open (they then hold a defunct link).
/// Linux ≥ 5.9.
///
/// # Errors
/// `EOPNOTSUPP` for a link type that cannot be detached, `ENOLINK` if it
/// already was.
pub fn link_detach(link: BorrowedFd<'_>) -> Result<()> {
    // struct { __u32 link_fd; }
    let mut attr = [0u32; 8];
    attr[0] = fd_u32(link);
    bpf("bpf(BPF_LINK_DETACH)", BPF_LINK_DETACH, &mut attr).map(|_| ())
}
