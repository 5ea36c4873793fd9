//! Finding and removing labs by their namespaces (also labs of killed runs),
//! and the privilege check made before building one.
//!
//! Layer: public API of `hftnet-lab`, for `hftnet lab down [--name N | --all]`
//! and for tests. Invariant: a namespace is considered part of a lab only if
//! its name parses as `hft-LAB-ROLE` ([`crate::parse_netns_name`]); nothing
//! else in `/run/netns` is ever removed. Removal is idempotent. Must never:
//! remove a namespace outside that pattern, or stop at the first failure (it
//! removes what it can and reports the rest).

use std::collections::BTreeMap;

use hftnet_sys::netns;
use serde::Serialize;

use crate::{LabError, parse_netns_name, validate_name};

/// A lab found in `/run/netns`, for listing and removal.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct LabInfo {
    /// The lab name (`N` in `hft-N-ROLE`).
    pub name: String,
    /// Its namespaces, sorted.
    pub namespaces: Vec<String>,
    /// Its host roles, in the order of `namespaces`.
    pub roles: Vec<String>,
}

/// Groups namespace names into labs; names outside the pattern are ignored.
pub(crate) fn group<I, S>(netns_names: I) -> Vec<LabInfo>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut labs: BTreeMap<String, LabInfo> = BTreeMap::new();
    let mut sorted: Vec<String> = netns_names
        .into_iter()
        .map(|s| s.as_ref().to_owned())
        .collect();
    sorted.sort();
    for ns in &sorted {
        if let Some((lab, role)) = parse_netns_name(ns) {
            let info = labs.entry(lab.to_owned()).or_insert_with(|| LabInfo {
                name: lab.to_owned(),
                namespaces: Vec::new(),
                roles: Vec::new(),
            });
            info.namespaces.push(ns.clone());
            info.roles.push(role.to_owned());
        }
    }
    labs.into_values().collect()
}

/// The labs present now: namespaces in `/run/netns` named `hft-LAB-ROLE`,
/// grouped by lab name, sorted. Includes labs of other processes and stale
/// labs of killed runs. An absent or unreadable `/run/netns` gives an empty
/// list.
#[must_use]
pub fn list() -> Vec<LabInfo> {
    group(netns::list().unwrap_or_default())
}

/// Removes the namespaces named, each like `ip netns del`; all are tried.
pub(crate) fn delete_namespaces<S: AsRef<str>>(namespaces: &[S]) -> Result<(), LabError> {
    let failures: Vec<String> = namespaces
        .iter()
        .filter_map(|ns| {
            let ns = ns.as_ref();
            netns::delete(ns).err().map(|e| format!("{ns}: {e}"))
        })
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(LabError::Teardown { failures })
    }
}

/// Removes lab `name` (all its `hft-NAME-*` namespaces), e.g. one left by a
/// killed run. Returns whether there was anything to remove: removing a lab
/// that is not there is `Ok(false)`.
///
/// A [`crate::Lab`] value still alive for that name will find its namespaces
/// gone when dropped; that is not an error.
///
/// # Errors
/// [`LabError::InvalidName`] for an invalid name; [`LabError::Teardown`]
/// listing the namespaces that could not be removed (e.g. not root).
pub fn remove(name: &str) -> Result<bool, LabError> {
    validate_name(name)?;
    let mut found = false;
    let mut result = Ok(());
    for lab in list().into_iter().filter(|lab| lab.name == name) {
        found = true;
        result = delete_namespaces(&lab.namespaces);
    }
    result.map(|()| found)
}

/// Removes every lab [`list`] shows for which `filter` is true; returns the
/// names of the labs removed. The building block of [`remove_all`], and a
/// way to clean up only one's own labs (e.g. by name prefix).
///
/// # Errors
/// [`LabError::Teardown`] listing every namespace that could not be removed;
/// the others are removed anyway.
pub fn remove_where<F>(mut filter: F) -> Result<Vec<String>, LabError>
where
    F: FnMut(&LabInfo) -> bool,
{
    let mut removed = Vec::new();
    let mut failures = Vec::new();
    for lab in list().into_iter().filter(|lab| filter(lab)) {
        match delete_namespaces(&lab.namespaces) {
            Ok(()) => removed.push(lab.name),
            Err(LabError::Teardown { failures: f }) => failures.extend(f),
            Err(other) => failures.push(other.to_string()),
        }
    }
    if failures.is_empty() {
        Ok(removed)
    } else {
        Err(LabError::Teardown { failures })
    }
}

/// Removes every lab on this machine, including labs of other running
/// processes and stale ones of killed runs (`hftnet lab down --all`).
/// Returns the names of the labs removed.
///
/// # Errors
/// As [`remove_where`].
pub fn remove_all() -> Result<Vec<String>, LabError> {
    remove_where(|_| true)
}

/// The process that created a lab with a generated name (`t<pid>-...`), if
/// the name says so; labs named by the user have no recorded creator.
#[must_use]
pub fn creator_pid(lab: &str) -> Option<u32> {
    lab.strip_prefix('t')?.split('-').next()?.parse().ok()
}

/// True when the lab's creator is a process that is still running, so
/// removing the lab would pull the network from under it.
#[must_use]
pub fn in_use(lab: &LabInfo) -> bool {
    creator_pid(&lab.name).is_some_and(|pid| std::path::Path::new(&format!("/proc/{pid}")).exists())
}

/// Removes every hftnet lab except those whose creating process still runs
/// (tests and `hftnet lab` runs in progress): what a killed run left behind
/// and labs made with `hftnet lab up`. Returns the names removed.
///
/// # Errors
/// As [`remove_where`].
pub fn remove_stale() -> Result<Vec<String>, LabError> {
    remove_where(|l| !in_use(l))
}

const CAP_NET_ADMIN: u32 = 12;
const CAP_SYS_ADMIN: u32 = 21;

/// Names of the capabilities a lab needs that the effective set `cap_eff` lacks.
fn missing_caps(cap_eff: u64) -> Vec<&'static str> {
    [
        (CAP_SYS_ADMIN, "CAP_SYS_ADMIN"),
        (CAP_NET_ADMIN, "CAP_NET_ADMIN"),
    ]
    .into_iter()
    .filter(|(bit, _)| cap_eff & (1u64 << bit) == 0)
    .map(|(_, name)| name)
    .collect()
}

/// Parses `/proc/self/status`: `(CapEff, effective uid)`.
fn parse_status(status: &str) -> Option<(u64, Option<u32>)> {
    let field = |key: &str| {
        status
            .lines()
            .find_map(|line| line.strip_prefix(key).map(str::trim))
    };
    let cap_eff = u64::from_str_radix(field("CapEff:")?, 16).ok()?;
    let euid = field("Uid:").and_then(|uids| uids.split_whitespace().nth(1)?.parse().ok());
    Some((cap_eff, euid))
}

/// Checks up front that this process may build a lab: its effective
/// capability set (`CapEff` in `/proc/self/status`) must hold CAP_SYS_ADMIN
/// (bit 21: namespaces, mounts) and CAP_NET_ADMIN (bit 12: links,
/// addresses, routes). Root normally has both; a container may not. Lets
/// the CLI fall back to loopback-only runs with a clear message.
///
/// # Errors
/// [`LabError::NotPrivileged`] naming what is missing, or
/// [`LabError::PrivilegeCheck`] if `/proc/self/status` cannot be read.
pub fn check_privileges() -> Result<(), LabError> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|source| LabError::PrivilegeCheck { source })?;
    let Some((cap_eff, euid)) = parse_status(&status) else {
        return Err(LabError::PrivilegeCheck {
            source: std::io::Error::new(std::io::ErrorKind::InvalidData, "no CapEff line"),
        });
    };
    let missing = missing_caps(cap_eff);
    if missing.is_empty() {
        return Ok(());
    }
    let euid = euid.map_or_else(|| "unknown".to_owned(), |u| u.to_string());
    Err(LabError::NotPrivileged {
        detail: format!(
            "missing {} in the effective set; euid {euid}",
            missing.join(", ")
        ),
    })
}

#[cfg(test)]
mod tests {
    #[test]
    fn creator_and_liveness() {
        use super::*;
        assert_eq!(creator_pid("t1234-0-abcd"), Some(1234));
        assert_eq!(creator_pid("mylab"), None);
        assert_eq!(creator_pid("tx-1"), None);
        let me = LabInfo {
            name: format!("t{}-0-0000", std::process::id()),
            namespaces: vec![],
            roles: vec![],
        };
        assert!(in_use(&me), "this test process is alive");
        let gone = LabInfo {
            name: "t4294967-0-0000".into(),
            namespaces: vec![],
            roles: vec![],
        };
        assert!(!in_use(&gone));
        let named = LabInfo {
            name: "mylab".into(),
            namespaces: vec![],
            roles: vec![],
        };
        assert!(!in_use(&named));
    }

    use super::*;

    #[test]
    fn grouping() {
        let labs = group([
            "hft-b-trader",
            "other",
            "hft-a-exchange",
            "hft-a-trader",
            "hft-x-y-trader",
            "hft-bad",
        ]);
        let names: Vec<_> = labs.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["a", "b", "x-y"]);
        assert_eq!(labs[0].namespaces, ["hft-a-exchange", "hft-a-trader"]);
        assert_eq!(labs[0].roles, ["exchange", "trader"]);
    }

    #[test]
    fn capabilities() {
        assert!(missing_caps(0x1ff_feff_ffff).is_empty());
        assert_eq!(missing_caps(0), ["CAP_SYS_ADMIN", "CAP_NET_ADMIN"]);
        assert_eq!(missing_caps(1 << 21), ["CAP_NET_ADMIN"]);
        let status = "Name:\tx\nUid:\t1000\t0\t0\t0\nCapEff:\t0000000000001000\n";
        assert_eq!(parse_status(status), Some((0x1000, Some(0))));
        assert_eq!(parse_status("Uid: 1 2 3 4\n"), None);
    }

    #[test]
    fn remove_rejects_invalid_names() {
        assert!(matches!(remove("../x"), Err(LabError::InvalidName { .. })));
    }
}
