//! System services: a small [`Services`] trait, [`Systemctl`] for the real
//! machine (it runs `systemctl` for the service named by the caller, and
//! nothing else), and [`FakeServices`] for tests.

use std::collections::BTreeMap;
use std::process::Command;
use std::sync::Mutex;

/// Why a service could not be queried, stopped or started.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// `systemctl` is not installed.
    #[error("`systemctl` not found: cannot manage service `{0}` (stop it by hand)")]
    NoSystemctl(String),
    /// `systemctl` ran and failed.
    #[error("`{command}` failed ({status}): {stderr}")]
    Failed {
        /// The command line.
        command: String,
        /// Exit status.
        status: String,
        /// Its standard error.
        stderr: String,
    },
    /// `systemctl` could not be started.
    #[error("running `{command}`: {source}")]
    Spawn {
        /// The command line.
        command: String,
        /// The error.
        source: std::io::Error,
    },
}

/// A service manager, small enough for tests to fake ([`FakeServices`]).
pub trait Services {
    /// Whether service `name` is active (running).
    ///
    /// # Errors
    /// When the service manager cannot be asked.
    fn is_active(&self, name: &str) -> Result<bool, ServiceError>;
    /// Stops service `name`.
    ///
    /// # Errors
    /// When the service manager fails.
    fn stop(&self, name: &str) -> Result<(), ServiceError>;
    /// Starts service `name`.
    ///
    /// # Errors
    /// When the service manager fails.
    fn start(&self, name: &str) -> Result<(), ServiceError>;
}

/// [`Services`] through `systemctl`.
#[derive(Debug, Clone)]
pub struct Systemctl {
    program: String,
}

impl Default for Systemctl {
    fn default() -> Self {
        Systemctl {
            program: "systemctl".into(),
        }
    }
}

impl Systemctl {
    /// `systemctl` found in `PATH`.
    pub fn new() -> Systemctl {
        Systemctl::default()
    }

    fn run(&self, args: &[&str], name: &str) -> Result<std::process::Output, ServiceError> {
        let command = format!("{} {}", self.program, args.join(" "));
        Command::new(&self.program)
            .args(args)
            .output()
            .map_err(|source| {
                if source.kind() == std::io::ErrorKind::NotFound {
                    ServiceError::NoSystemctl(name.to_owned())
                } else {
                    ServiceError::Spawn { command, source }
                }
            })
    }

    fn checked(&self, args: &[&str], name: &str) -> Result<(), ServiceError> {
        let out = self.run(args, name)?;
        if out.status.success() {
            Ok(())
        } else {
            Err(ServiceError::Failed {
                command: format!("{} {}", self.program, args.join(" ")),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            })
        }
    }
}

impl Services for Systemctl {
    fn is_active(&self, name: &str) -> Result<bool, ServiceError> {
        let out = self.run(&["is-active", name], name)?;
        let state = String::from_utf8_lossy(&out.stdout).trim().to_owned();
        match state.as_str() {
            "active" | "reloading" | "activating" | "refreshing" => Ok(true),
            "inactive" | "failed" | "deactivating" | "unknown" | "maintenance" => Ok(false),
            // No unit state printed: systemd is not running (containers,
            // minimal VMs) or the bus is unreachable.
            _ => Err(ServiceError::Failed {
                command: format!("{} is-active {name}", self.program),
                status: out.status.to_string(),
                stderr: String::from_utf8_lossy(&out.stderr).trim().to_owned(),
            }),
        }
    }

    fn stop(&self, name: &str) -> Result<(), ServiceError> {
        self.checked(&["stop", name], name)
    }

    fn start(&self, name: &str) -> Result<(), ServiceError> {
        self.checked(&["start", name], name)
    }
}

/// An in-memory [`Services`] for tests: services and whether they are
/// active, and a log of calls (`"stop irqbalance"`).
#[derive(Debug, Default)]
pub struct FakeServices {
    active: Mutex<BTreeMap<String, bool>>,
    calls: Mutex<Vec<String>>,
}

impl FakeServices {
    /// Known services and whether each is active; others are unknown
    /// (inactive, and `stop`/`start` fail).
    pub fn new(services: &[(&str, bool)]) -> FakeServices {
        FakeServices {
            active: Mutex::new(
                services
                    .iter()
                    .map(|(n, a)| ((*n).to_owned(), *a))
                    .collect(),
            ),
            calls: Mutex::new(Vec::new()),
        }
    }

    /// The calls made so far.
    pub fn calls(&self) -> Vec<String> {
        self.calls.lock().map(|c| c.clone()).unwrap_or_default()
    }

    fn set(&self, verb: &str, name: &str, active: bool) -> Result<(), ServiceError> {
        if let Ok(mut c) = self.calls.lock() {
            c.push(format!("{verb} {name}"));
        }
        let mut map = self.active.lock().unwrap_or_else(|p| p.into_inner());
        match map.get_mut(name) {
            Some(a) => {
                *a = active;
                Ok(())
            }
            None => Err(ServiceError::Failed {
                command: format!("systemctl {verb} {name}"),
                status: "exit status: 5".into(),
                stderr: format!("Unit {name}.service not loaded."),
            }),
        }
    }
}

impl Services for FakeServices {
    fn is_active(&self, name: &str) -> Result<bool, ServiceError> {
        if let Ok(mut c) = self.calls.lock() {
            c.push(format!("is-active {name}"));
        }
        let map = self.active.lock().unwrap_or_else(|p| p.into_inner());
        Ok(map.get(name).copied().unwrap_or(false))
    }

    fn stop(&self, name: &str) -> Result<(), ServiceError> {
        self.set("stop", name, false)
    }

    fn start(&self, name: &str) -> Result<(), ServiceError> {
        self.set("start", name, true)
    }
}
