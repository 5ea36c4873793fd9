//! Reading a file that tells root what to do (a snapshot, a profile): one
//! rule for both.
//!
//! The file is opened with `O_NOFOLLOW` (a symbolic link under the name is
//! refused) and `O_NONBLOCK` (a FIFO does not hang the open); then, on the
//! very descriptor that is read afterwards, it must be a regular file owned
//! by root or by the invoking user (the effective uid), not writable by
//! group or others, and at most a given size.

use std::path::Path;

/// Why a file was not read.
#[derive(Debug)]
pub enum TrustError {
    /// The file could not be opened or read.
    Io(std::io::Error),
    /// The file is not one root may trust: a sentence saying why, to follow
    /// the file's name.
    Untrusted(String),
}

/// Reads `path` under the rule of the [module documentation](self): at most
/// `max` bytes (`limit` names the constant, `hint` says why that is
/// enough).
///
/// # Errors
/// [`TrustError::Untrusted`] for a symbolic link, a file that is not
/// regular, owned by another user, writable by group or others, or larger
/// than `max`; [`TrustError::Io`] when it cannot be opened or read.
pub fn read_trusted(path: &Path, max: u64, limit: &str, hint: &str) -> Result<Vec<u8>, TrustError> {
    use std::io::Read as _;
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let f = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC | libc::O_NONBLOCK)
        .open(path)
        .map_err(|e| {
            if e.raw_os_error() == Some(libc::ELOOP) {
                TrustError::Untrusted("is a symbolic link".into())
            } else {
                TrustError::Io(e)
            }
        })?;
    let meta = f.metadata().map_err(TrustError::Io)?;
    let me = hftnet_sys::proc::euid();
    let untrusted = |why: String| TrustError::Untrusted(why);
    if !meta.is_file() {
        return Err(untrusted("is not a regular file".into()));
    }
    if meta.uid() != 0 && meta.uid() != me {
        return Err(untrusted(format!(
            "belongs to uid {}, neither root nor you",
            meta.uid()
        )));
    }
    if meta.mode() & 0o022 != 0 {
        return Err(untrusted(format!(
            "can be written by others (mode {:o}); `chmod go-w` it if you trust its contents",
            meta.mode() & 0o777
        )));
    }
    let too_large = || untrusted(format!("is larger than {max} bytes ({limit}); {hint}"));
    if meta.len() > max {
        return Err(too_large());
    }
    // The file may grow after the check: read one byte more than allowed at most.
    let mut bytes = Vec::new();
    f.take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(TrustError::Io)?;
    if bytes.len() as u64 > max {
        return Err(too_large());
    }
    Ok(bytes)
}
