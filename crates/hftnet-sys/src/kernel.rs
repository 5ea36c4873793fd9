//! The running kernel's version: [`parse_release`] reads a release string
//! (`uname -r`, `/proc/sys/kernel/osrelease`) into a [`KernelVersion`], and
//! [`running`] asks the kernel for its own (`uname(2)`).
//!
//! Layer: `hftnet-sys`, used at start-up to choose between code paths that
//! need a minimum kernel (io_uring opcodes, cgroup partitions). The parser is
//! the one place the workspace turns a release string into numbers; code that
//! reads the string some other way (a fake `/proc` in tests) calls it too.
//!
//! Invariants: only the leading `MAJOR.MINOR[.PATCH]` counts; whatever
//! follows (`-1-amd64`, `-rc3`, `+`, `.el9.x86_64`) is ignored, and a missing
//! patch level is 0. A string without a major and a minor number is `None`,
//! never a guess.
//!
//! Must never: panic on any input, or treat a probed feature as present just
//! because the version says so (probe the feature where the kernel offers a
//! probe; the version is the fallback).
//!
//! # References
//! `uname(2)`; `Documentation/admin-guide/sysctl/kernel.rst` (`osrelease`).

use std::fmt;

use crate::error::{SyscallError, cvt};

/// A kernel version, `major.minor.patch`, ordered as versions are
/// (`5.15.0 < 6.1.0 < 6.18.0`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct KernelVersion {
    /// `6` of `6.18.0`.
    pub major: u32,
    /// `18` of `6.18.0`.
    pub minor: u32,
    /// `0` of `6.18.0` (0 when the release has none, e.g. `6.1`).
    pub patch: u32,
}

impl KernelVersion {
    /// `major.minor.patch`.
    #[must_use]
    pub const fn new(major: u32, minor: u32, patch: u32) -> Self {
        Self {
            major,
            minor,
            patch,
        }
    }

    /// True if this is `major.minor` or later (any patch level).
    #[must_use]
    pub const fn at_least(&self, major: u32, minor: u32) -> bool {
        self.major > major || (self.major == major && self.minor >= minor)
    }
}

impl fmt::Display for KernelVersion {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}.{}.{}", self.major, self.minor, self.patch)
    }
}

/// Parses a kernel release string: `"6.18.0-1-amd64"` → 6.18.0,
/// `"5.15.0-rc3"` → 5.15.0, `"6.1"` → 6.1.0, `"6.8.0-45-generic\n"` → 6.8.0.
/// Surrounding whitespace is ignored. `None` unless the string starts with
/// `MAJOR.MINOR` in decimal digits (each fitting a `u32`).
#[must_use]
pub fn parse_release(release: &str) -> Option<KernelVersion> {
    /// The leading decimal number of `s` and what follows it.
    fn number(s: &str) -> Option<(u32, &str)> {
        let end = s.find(|c: char| !c.is_ascii_digit()).unwrap_or(s.len());
        Some((s[..end].parse().ok()?, &s[end..]))
    }
    let (major, rest) = number(release.trim())?;
    let (minor, rest) = number(rest.strip_prefix('.')?)?;
    let patch = rest
        .strip_prefix('.')
        .and_then(number)
        .map_or(0, |(p, _)| p);
    Some(KernelVersion::new(major, minor, patch))
}

/// Why [`running`] could not tell the kernel's version.
#[derive(Debug, thiserror::Error)]
pub enum RunningError {
    /// `uname(2)` failed.
    #[error(transparent)]
    Uname(#[from] SyscallError),
    /// The release `uname` returned does not start with `MAJOR.MINOR`.
    #[error("kernel release {release:?} (uname) does not start with MAJOR.MINOR")]
    Unparsable {
        /// The release string as the kernel gave it.
        release: String,
    },
}

/// The version of the running kernel, from the release field of `uname(2)`
/// (the same string as `/proc/sys/kernel/osrelease`), through
/// [`parse_release`].
///
/// # Errors
/// [`RunningError::Uname`] naming `uname` if the call fails (it does not on
/// Linux, short of a seccomp filter), [`RunningError::Unparsable`] with the
/// release if it does not start with `MAJOR.MINOR`.
pub fn running() -> Result<KernelVersion, RunningError> {
    // SAFETY: utsname is plain data (arrays of c_char); all-zero is valid.
    let mut uts: libc::utsname = unsafe { std::mem::zeroed() };
    // SAFETY: `uts` is a live, writable utsname the kernel fills in.
    cvt("uname", unsafe { libc::uname(&mut uts) })?;
    // The kernel NUL-terminates the field; stop at the array's end regardless.
    let bytes: Vec<u8> = uts
        .release
        .iter()
        .take_while(|&&c| c != 0)
        .map(|&c| c as u8)
        .collect();
    let release = String::from_utf8_lossy(&bytes);
    parse_release(&release).ok_or_else(|| RunningError::Unparsable {
        release: release.into_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn test_parse_release() {
        let v = |major, minor, patch| Some(KernelVersion::new(major, minor, patch));
        assert_eq!(parse_release("6.18.0-1-amd64"), v(6, 18, 0));
        assert_eq!(parse_release("5.15.0-rc3"), v(5, 15, 0));
        assert_eq!(parse_release("6.1"), v(6, 1, 0));
        assert_eq!(parse_release("6.1-rc2"), v(6, 1, 0));
        assert_eq!(parse_release("6.8.0-45-generic\n"), v(6, 8, 0));
        assert_eq!(parse_release("5.15.0-100-generic"), v(5, 15, 0));
        assert_eq!(parse_release("4.19.0"), v(4, 19, 0));
        assert_eq!(
            parse_release("6.6.87.2-microsoft-standard-WSL2"),
            v(6, 6, 87)
        );
        assert_eq!(parse_release("5.14.0-427.13.1.el9_4.x86_64"), v(5, 14, 0));
        assert_eq!(parse_release("6.10.3+"), v(6, 10, 3));
        assert_eq!(parse_release(" 6.12.9 "), v(6, 12, 9));
        assert_eq!(parse_release("6.1.x"), v(6, 1, 0));
    }

    #[test]
    fn test_parse_release_refuses_what_is_not_a_version() {
        for bad in [
            "",
            "\n",
            "6",
            "6.",
            "6-rc1",
            ".1.0",
            "v6.1.0",
            "six.one",
            "6.x",
            "99999999999.1.0",
            "6.99999999999",
        ] {
            assert_eq!(parse_release(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn versions_order_and_compare() {
        let v = KernelVersion::new;
        assert!(v(5, 15, 0) < v(6, 1, 0));
        assert!(v(6, 1, 0) < v(6, 1, 1));
        assert!(v(6, 9, 0) < v(6, 18, 0), "numeric, not textual");
        assert!(v(6, 1, 0).at_least(6, 1));
        assert!(v(6, 18, 0).at_least(6, 1));
        assert!(v(7, 0, 0).at_least(6, 9));
        assert!(!v(6, 0, 99).at_least(6, 1));
        assert!(!v(5, 19, 0).at_least(6, 0));
        assert_eq!(v(6, 18, 2).to_string(), "6.18.2");
    }

    #[test]
    fn running_matches_osrelease() {
        let v = running().unwrap();
        let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").unwrap();
        assert_eq!(Some(v), parse_release(&release), "{release}");
        // Every kernel this code runs on has at least what the workspace
        // assumes elsewhere (recvmmsg, SO_TIMESTAMPING: well before 4.0).
        assert!(v.at_least(4, 0), "{v}");
    }
}
