//! Skipping a test honestly: what a test that cannot run here (no root, no
//! tool, too few CPUs) calls, so that a skip is always visible and never
//! passes for a run in CI.
//!
//! Layer: test support, next to the lab every privileged test builds.
//! Invariants: the reason goes straight to file descriptor 2 (libtest
//! captures `eprintln!` of passing tests, which would hide it); when the
//! environment says CI (`CI` set to anything but `false` or `0`), a skip
//! is a failure (it panics with the reason), since CI runs as root with
//! every tool installed.

use std::io::Write as _;

/// Whether this run is CI (`CI` set, and not empty, `false` or `0`).
#[must_use]
pub fn in_ci() -> bool {
    ci_from(std::env::var("CI").ok().as_deref())
}

/// [`in_ci`] of a value of `CI`.
#[must_use]
pub fn ci_from(v: Option<&str>) -> bool {
    v.is_some_and(|v| !v.is_empty() && v != "false" && v != "0")
}

/// Skips `test` because of `why`: prints `SKIPPED test: why` where the user
/// sees it and returns true, so the test can `return`.
///
/// # Panics
/// In CI ([`in_ci`]): a privileged or tool-dependent test must run there.
pub fn skip(test: &str, why: &dyn std::fmt::Display) -> bool {
    assert!(!in_ci(), "{test} cannot run in CI: {why}");
    let _ = writeln!(std::io::stderr(), "SKIPPED {test}: {why}");
    true
}

/// Skips `test` when labs cannot be built here (not root, or without the
/// capabilities a lab needs); returns whether it skipped.
///
/// # Panics
/// In CI, when it would skip.
pub fn skip_without_root(test: &str) -> bool {
    match crate::check_privileges() {
        Ok(()) => false,
        Err(e) => skip(test, &e),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ci_is_any_value_but_empty_false_or_0() {
        for (v, ci) in [
            (None, false),
            (Some(""), false),
            (Some("false"), false),
            (Some("0"), false),
            (Some("true"), true),
            (Some("1"), true),
            (Some("yes"), true),
        ] {
            assert_eq!(ci_from(v), ci, "{v:?}");
        }
    }
}
