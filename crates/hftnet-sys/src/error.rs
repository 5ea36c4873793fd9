//! The error every wrapper in this crate returns: the name of the call that
//! failed and the `errno` it set.

use std::fmt;
use std::io;

/// A failed system call: which call, and the OS error it returned.
///
/// It is small and does not allocate, so the hot path can return it.
#[derive(Debug)]
pub struct SyscallError {
    /// The C call (and, where it helps, the option) that failed, e.g.
    /// `"setsockopt(SO_BUSY_POLL)"`.
    pub call: &'static str,
    /// The error the kernel returned.
    pub io_error: io::Error,
}

impl SyscallError {
    /// Builds the error from the calling thread's current `errno`.
    #[must_use]
    pub fn last(call: &'static str) -> Self {
        Self {
            call,
            io_error: io::Error::last_os_error(),
        }
    }

    /// Builds the error from an explicit `errno` value.
    #[must_use]
    pub fn from_errno(call: &'static str, errno: i32) -> Self {
        Self {
            call,
            io_error: io::Error::from_raw_os_error(errno),
        }
    }

    /// The raw `errno`, if the error came from the OS.
    #[must_use]
    pub fn errno(&self) -> Option<i32> {
        self.io_error.raw_os_error()
    }

    /// True when the call failed with `EAGAIN`/`EWOULDBLOCK`.
    #[must_use]
    pub fn would_block(&self) -> bool {
        self.io_error.kind() == io::ErrorKind::WouldBlock
    }

    /// True when the call failed for lack of privilege (`EPERM` or `EACCES`).
    #[must_use]
    pub fn is_permission(&self) -> bool {
        matches!(self.errno(), Some(libc::EPERM) | Some(libc::EACCES))
    }
}

impl fmt::Display for SyscallError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} failed: {}", self.call, self.io_error)
    }
}

/// No `source()`: the message already ends with the OS error, and a source
/// would make error chains print it twice.
impl std::error::Error for SyscallError {}

impl From<SyscallError> for io::Error {
    fn from(e: SyscallError) -> Self {
        io::Error::new(e.io_error.kind(), e)
    }
}

/// Result of a wrapper in this crate.
pub type Result<T> = std::result::Result<T, SyscallError>;

/// Turns a C return value into a [`Result`]: `-1` becomes the current `errno`.
pub(crate) fn cvt(call: &'static str, ret: libc::c_int) -> Result<libc::c_int> {
    if ret == -1 {
        Err(SyscallError::last(call))
    } else {
        Ok(ret)
    }
}

/// Like [`cvt`] for calls returning `ssize_t`.
pub(crate) fn cvt_size(call: &'static str, ret: libc::ssize_t) -> Result<usize> {
    if ret < 0 {
        Err(SyscallError::last(call))
    } else {
        Ok(ret as usize)
    }
}
