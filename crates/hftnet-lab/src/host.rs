//! One host of a lab: a network namespace with one veth end and an address,
//! and the ways to run code inside it (a closure on a thread, a long-running
//! thread, a child process).
//!
//! Layer: public API of `hftnet-lab`, over `hftnet_sys::netns`. Invariant:
//! code is moved into a namespace only on a thread created for it, never on
//! the caller's thread or a pooled one; so the caller's namespace never
//! changes. Sockets keep the namespace they were created in, so a socket made
//! inside [`Host::run`] can be returned and used from any thread. Must never:
//! `setns` the calling thread, or leave a thread in a namespace it was not
//! asked to run in.

use std::fmt;
use std::net::Ipv4Addr;
use std::os::fd::{AsFd, OwnedFd};
use std::process::{Child, Command};
use std::sync::mpsc;
use std::thread::{self, JoinHandle};

use hftnet_sys::netns;
use serde::Serialize;

use crate::LabError;

/// A host of a lab. Obtained from [`crate::Lab::hosts`], [`crate::Lab::host`],
/// [`crate::Lab::trader`] or [`crate::Lab::exchange`]; valid while its lab is up.
#[derive(Debug, PartialEq, Eq, Serialize)]
pub struct Host {
    pub(crate) role: String,
    pub(crate) netns: String,
    pub(crate) iface: String,
    pub(crate) addr: Ipv4Addr,
    pub(crate) prefix_len: u8,
    pub(crate) peer: Ipv4Addr,
    pub(crate) mtu: Option<u32>,
}

/// Payload of the unwinding that ends a [`Host::spawn_thread`] thread whose
/// `setns` failed (the closure never ran; the error is returned instead).
struct SetnsFailed;

impl Host {
    /// Makes a failed configuration call in this host's namespace a
    /// [`LabError::Netlink`] naming `step`.
    pub(crate) fn step_failed(
        &self,
        step: impl Into<String>,
    ) -> impl FnOnce(hftnet_sys::SyscallError) -> LabError {
        let namespace = self.netns.clone();
        let step = step.into();
        move |source| LabError::Netlink {
            namespace,
            step,
            source,
        }
    }

    /// The role, e.g. [`crate::TRADER`] or [`crate::EXCHANGE`].
    #[must_use]
    pub fn role(&self) -> &str {
        &self.role
    }

    /// The network namespace name, e.g. `hft-demo-trader` (usable with
    /// `ip netns exec`).
    #[must_use]
    pub fn netns(&self) -> &str {
        &self.netns
    }

    /// The name of this host's veth end inside its namespace, e.g. `veth0`.
    #[must_use]
    pub fn iface(&self) -> &str {
        &self.iface
    }

    /// This host's IPv4 address on [`iface`](Self::iface).
    #[must_use]
    pub fn addr(&self) -> Ipv4Addr {
        self.addr
    }

    /// Prefix length of [`addr`](Self::addr).
    #[must_use]
    pub fn prefix_len(&self) -> u8 {
        self.prefix_len
    }

    /// The address of the host at the other end of the veth pair.
    #[must_use]
    pub fn peer(&self) -> Ipv4Addr {
        self.peer
    }

    /// The MTU set on the veth end, if the lab was built with one (else the
    /// kernel default, 1500).
    #[must_use]
    pub fn mtu(&self) -> Option<u32> {
        self.mtu
    }

    fn open_ns(&self) -> Result<OwnedFd, LabError> {
        netns::open(&self.netns).map_err(|source| LabError::Netns {
            action: "open",
            namespace: self.netns.clone(),
            source,
        })
    }

    fn thread_name(&self) -> String {
        // Linux keeps 15 bytes of a thread name; roles are at most 16.
        format!("lab-{}", self.role)
    }

    /// Runs `f` on a fresh thread that has entered this host's namespace
    /// (`setns(CLONE_NEWNET)`), waits for it and returns its value. Sockets
    /// created in `f` belong to the namespace and may be returned and used
    /// from any thread.
    ///
    /// # Errors
    /// [`LabError::Netns`] if the namespace cannot be opened or entered (e.g.
    /// the lab is down), [`LabError::Thread`] if no thread can be started.
    ///
    /// # Panics
    /// If `f` panics, the panic is resumed on the calling thread.
    pub fn run<F, R>(&self, f: F) -> Result<R, LabError>
    where
        F: FnOnce() -> R + Send,
        R: Send,
    {
        let ns = self.open_ns()?;
        thread::scope(|scope| {
            let handle = thread::Builder::new()
                .name(self.thread_name())
                .spawn_scoped(scope, move || {
                    netns::setns(ns.as_fd())?;
                    drop(ns);
                    Ok(f())
                })
                .map_err(|source| LabError::Thread {
                    namespace: self.netns.clone(),
                    source,
                })?;
            match handle.join() {
                Ok(Ok(value)) => Ok(value),
                Ok(Err(source)) => Err(LabError::Netns {
                    action: "enter",
                    namespace: self.netns.clone(),
                    source,
                }),
                Err(payload) => std::panic::resume_unwind(payload),
            }
        })
    }

    /// Starts a named thread inside this host's namespace running `f` (for
    /// long-running servers) and returns its handle once the thread is inside.
    /// Joining the handle gives `f`'s value, or `Err` with its panic.
    ///
    /// The thread keeps the namespace alive while it runs, even after the lab
    /// is dropped (the name disappears from `/run/netns` anyway); make `f`
    /// end, e.g. with socket read timeouts and a stop flag.
    ///
    /// # Errors
    /// [`LabError::Netns`] if the namespace cannot be opened or entered,
    /// [`LabError::Thread`] if the thread cannot be started. `f` does not run
    /// in either case.
    pub fn spawn_thread<F, R>(&self, name: &str, f: F) -> Result<JoinHandle<R>, LabError>
    where
        F: FnOnce() -> R + Send + 'static,
        R: Send + 'static,
    {
        let ns = self.open_ns()?;
        let (tx, rx) = mpsc::sync_channel(1);
        let handle = thread::Builder::new()
            .name(name.to_owned())
            .spawn(move || {
                let entered = netns::setns(ns.as_fd());
                drop(ns);
                match entered {
                    Ok(()) => {
                        let _ = tx.send(Ok(()));
                        f()
                    }
                    Err(e) => {
                        let _ = tx.send(Err(e));
                        // End the thread without running `f` and without the
                        // panic hook's message; spawn_thread reports the error.
                        std::panic::resume_unwind(Box::new(SetnsFailed))
                    }
                }
            })
            .map_err(|source| LabError::Thread {
                namespace: self.netns.clone(),
                source,
            })?;
        match rx.recv() {
            Ok(Ok(())) => Ok(handle),
            Ok(Err(source)) => {
                let _ = handle.join();
                Err(LabError::Netns {
                    action: "enter",
                    namespace: self.netns.clone(),
                    source,
                })
            }
            Err(mpsc::RecvError) => {
                // The thread ended without reporting: it cannot, but do not hang or lie.
                let _ = handle.join();
                Err(LabError::Thread {
                    namespace: self.netns.clone(),
                    source: std::io::Error::other("namespace thread exited before entering"),
                })
            }
        }
    }

    /// Spawns `cmd` as a process inside this host's network namespace: the
    /// process is forked from a thread that has entered the namespace, so it
    /// inherits it (as do its children). Only the network namespace changes:
    /// unlike `ip netns exec`, `/sys` is not remounted, so `/sys/class/net`
    /// in the child still shows the default namespace; use netlink tools
    /// (`ip`) inside. The child keeps the namespace alive until it exits.
    ///
    /// # Errors
    /// [`LabError::Spawn`] if the program cannot be started, plus the errors
    /// of [`run`](Self::run).
    pub fn spawn(&self, cmd: &mut Command) -> Result<Child, LabError> {
        let program = cmd.get_program().to_string_lossy().into_owned();
        self.run(|| cmd.spawn())?.map_err(|source| LabError::Spawn {
            namespace: self.netns.clone(),
            program,
            source,
        })
    }
}

impl fmt::Display for Host {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{:<9} netns {:<24} {} {}/{} peer {}",
            self.role, self.netns, self.iface, self.addr, self.prefix_len, self.peer
        )?;
        if let Some(mtu) = self.mtu {
            write!(f, " mtu {mtu}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn run_on_missing_namespace_is_a_clear_error() {
        let host = Host {
            role: "trader".into(),
            netns: "hft-never-created-x-trader".into(),
            iface: "veth0".into(),
            addr: Ipv4Addr::new(198, 18, 0, 1),
            prefix_len: 24,
            peer: Ipv4Addr::new(198, 18, 0, 2),
            mtu: None,
        };
        let err = host.run(|| ()).unwrap_err();
        assert!(
            matches!(err, LabError::Netns { action: "open", .. }),
            "{err}"
        );
        assert!(host.spawn_thread("x", || ()).is_err());
        assert_eq!(
            host.to_string(),
            "trader    netns hft-never-created-x-trader veth0 198.18.0.1/24 peer 198.18.0.2"
        );
    }
}
