//! The one error type of the lab API, [`LabError`]. Each variant says what
//! failed *and what to do about it*, so the CLI can print it as is.
//!
//! Layer: public API of `hftnet-lab`. Invariant: a lower-level
//! [`SyscallError`] is kept as the `source`, with the call that failed and the
//! kernel's `errno`; it is never flattened into a string. Must never: panic
//! while formatting, or suggest a command that touches the default namespace.

use std::io;

use hftnet_sys::SyscallError;
use thiserror::Error;

/// Why a lab operation failed.
#[derive(Debug, Error)]
#[non_exhaustive]
pub enum LabError {
    /// The process lacks the privileges to create namespaces and configure
    /// their links. Run as root, or fall back to loopback-only runs.
    #[error(
        "hftnet lab needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) to create network namespaces; \
         run as root, or use loopback-only runs ({detail})"
    )]
    NotPrivileged {
        /// What exactly is missing, e.g. `"missing CAP_SYS_ADMIN, CAP_NET_ADMIN; euid 1000"`.
        detail: String,
    },

    /// `/proc/self/status` could not be read, so privileges are unknown.
    #[error(
        "could not check privileges: reading /proc/self/status failed ({source}); \
         is /proc mounted?"
    )]
    PrivilegeCheck {
        /// The read error.
        source: io::Error,
    },

    /// A lab name given by the user is not acceptable.
    #[error(
        "invalid lab name {name:?}: {reason}; use 1 to {max} characters from a-z, A-Z, 0-9, \
         '-' and '_', starting with a letter or digit",
        max = crate::MAX_NAME_LEN
    )]
    InvalidName {
        /// The name as given.
        name: String,
        /// What is wrong with it.
        reason: &'static str,
    },

    /// A topology that cannot be built as asked (e.g. a star with no
    /// receivers, or more than [`crate::MAX_RECEIVERS`]).
    #[error("invalid lab topology: {reason}")]
    InvalidTopology {
        /// What is wrong and what is accepted.
        reason: String,
    },

    /// A namespace of the lab to create exists already (a lab of that name is
    /// up, or a killed run left it behind).
    #[error(
        "a lab named {name:?} already exists (network namespace {namespace}); remove it with \
         `hftnet lab down --name {name}`, or choose another name"
    )]
    AlreadyExists {
        /// The lab name.
        name: String,
        /// The namespace that exists.
        namespace: String,
    },

    /// A namespace could not be created, opened, entered or removed.
    #[error(
        "could not {action} network namespace {namespace}: {source}{}",
        hint(source)
    )]
    Netns {
        /// What was attempted: `"create"`, `"open"`, `"enter"`, `"remove"`, `"list"`.
        action: &'static str,
        /// The namespace.
        namespace: String,
        /// The failed call.
        source: SyscallError,
    },

    /// A netlink request configuring a namespace failed.
    #[error(
        "could not configure network namespace {namespace} ({step}): {source}{}",
        hint(source)
    )]
    Netlink {
        /// The namespace being configured.
        namespace: String,
        /// The step, e.g. `"add 198.18.0.1/24 on veth0"`.
        step: String,
        /// The failed request (its `call` names the rtnetlink message).
        source: SyscallError,
    },

    /// No thread could be started to run code inside a namespace.
    #[error("could not start a thread for network namespace {namespace}: {source}")]
    Thread {
        /// The namespace.
        namespace: String,
        /// The spawn error.
        source: io::Error,
    },

    /// A process could not be spawned inside a namespace.
    #[error("could not spawn {program:?} in network namespace {namespace}: {source}")]
    Spawn {
        /// The namespace.
        namespace: String,
        /// The program.
        program: String,
        /// The spawn error.
        source: io::Error,
    },

    /// Tearing a lab down left namespaces behind.
    #[error(
        "lab teardown incomplete: {}; remove what is left with `hftnet lab down --all` \
         (or `ip netns del NAME`)",
        .failures.join("; ")
    )]
    Teardown {
        /// One message per namespace that could not be removed.
        failures: Vec<String>,
    },
}

fn hint(e: &SyscallError) -> &'static str {
    if e.is_permission() {
        "; hftnet lab needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN): run as root, or use \
         loopback-only runs"
    } else if e.io_error.kind() == io::ErrorKind::Unsupported {
        "; the kernel may lack the veth driver (CONFIG_VETH)"
    } else {
        ""
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn messages_say_what_to_do() {
        let e = LabError::NotPrivileged {
            detail: "missing CAP_NET_ADMIN".into(),
        };
        assert!(e.to_string().starts_with(
            "hftnet lab needs root (CAP_SYS_ADMIN and CAP_NET_ADMIN) to create network \
             namespaces; run as root, or use loopback-only runs"
        ));
        let e = LabError::Netlink {
            namespace: "hft-x-trader".into(),
            step: "create veth pair".into(),
            source: SyscallError::from_errno("rtnetlink RTM_NEWLINK(veth)", 1),
        };
        let s = e.to_string();
        assert!(s.contains("rtnetlink RTM_NEWLINK(veth) failed"), "{s}");
        assert!(s.contains("run as root"), "{s}");
        let e = LabError::Teardown {
            failures: vec!["a".into(), "b".into()],
        };
        assert!(e.to_string().contains("a; b"));
    }
}
