//! [`System`]: the [`Access`] of a real machine — sysctls and files through
//! a [`Root`], NIC settings through the ethtool ioctl, services through a
//! [`Services`] manager, cgroup operations through [`crate::cpuset::HostOp`].
//!
//! Reads never write. Writes touch only the target named; errors say which
//! target and what to do, and tell a value the kernel refused
//! ([`AccessError::Refused`]: the apply goes on) from anything else
//! ([`AccessError::Failed`]: the apply rolls back).

use hftnet_sys::ethtool::Ethtool;

use crate::cpuset;
use crate::nic::{self, NicError, NicKey};
use crate::plan::{Access, AccessError, Target};
use crate::root::{Root, RootError, bracketed};
use crate::services::Services;

/// The machine (or a fake tree under another root, for tests).
pub struct System<'a> {
    /// Where `/proc` and `/sys` are.
    pub root: Root,
    /// The ethtool handle, opened in the network namespace of the
    /// interfaces; `None` when no interface is involved.
    pub ethtool: Option<Ethtool>,
    /// The service manager.
    pub services: &'a dyn Services,
}

impl std::fmt::Debug for System<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("System").field("root", &self.root).finish()
    }
}

/// Files whose value is the bracketed word of a list (`always [never]`).
fn is_bracketed(path: &str) -> bool {
    path.starts_with("sys/kernel/mm/transparent_hugepage/")
}

fn root_error(target: &Target, value: Option<&str>, e: RootError) -> AccessError {
    match e {
        RootError::Rejected { .. } => AccessError::Refused {
            target: target.to_string(),
            value: value.unwrap_or_default().to_string(),
            why: e.to_string(),
        },
        other => AccessError::Failed {
            target: target.to_string(),
            why: other.to_string(),
        },
    }
}

fn nic_error(target: &Target, value: Option<&str>, e: NicError) -> AccessError {
    match e {
        NicError::Rejected { .. } | NicError::BadValue { .. } | NicError::NotSupported { .. } => {
            AccessError::Refused {
                target: target.to_string(),
                value: value.unwrap_or_default().to_string(),
                why: e.to_string(),
            }
        }
        other => AccessError::Failed {
            target: target.to_string(),
            why: other.to_string(),
        },
    }
}

impl System<'_> {
    fn ethtool(&self, target: &Target) -> Result<&Ethtool, AccessError> {
        self.ethtool.as_ref().ok_or_else(|| AccessError::Failed {
            target: target.to_string(),
            why: "no ethtool handle was opened for interface settings".into(),
        })
    }

    fn key(target: &Target, key: &str) -> Result<NicKey, AccessError> {
        key.parse().map_err(|e| AccessError::Failed {
            target: target.to_string(),
            why: format!("{e}"),
        })
    }
}

impl Access for System<'_> {
    fn read(&self, target: &Target) -> Result<Option<String>, AccessError> {
        match target {
            Target::Sysctl { name } => self
                .root
                .sysctl_get(name)
                .map_err(|e| root_error(target, None, e)),
            Target::File { path } => {
                let v = self
                    .root
                    .read(path)
                    .map_err(|e| root_error(target, None, e))?;
                Ok(v.map(|v| {
                    if is_bracketed(path) {
                        bracketed(&v).unwrap_or(&v).to_string()
                    } else {
                        v
                    }
                }))
            }
            Target::Nic { iface, key } => {
                let et = self.ethtool(target)?;
                let k = Self::key(target, key)?;
                match nic::get(et, iface, &k) {
                    Ok(v) => Ok(v),
                    Err(e) if e.is_not_supported() => Ok(None),
                    Err(e) => Err(nic_error(target, None, e)),
                }
            }
            // No service manager to ask (no systemctl, or systemd not
            // running): there is no service to stop.
            Target::Service { name } => match self.services.is_active(name) {
                Ok(true) => Ok(Some("active".into())),
                Ok(false) => Ok(Some("inactive".into())),
                Err(_) => Ok(None),
            },
            Target::HostOp { op } => match op {
                cpuset::HostOp::EnableController { path, .. } => self
                    .root
                    .read(path)
                    .map_err(|e| root_error(target, None, e)),
                cpuset::HostOp::CreateDir { path, .. } => Ok(Some(if self.root.is_dir(path) {
                    "directory".into()
                } else {
                    "absent".into()
                })),
                // Where a process is cannot be compared as a value.
                cpuset::HostOp::MoveProcess { .. } => Ok(None),
            },
        }
    }

    fn write(&self, target: &Target, value: &str) -> Result<(), AccessError> {
        match target {
            Target::Sysctl { name } => self
                .root
                .sysctl_set(name, value)
                .map_err(|e| root_error(target, Some(value), e)),
            Target::File { path } => self
                .root
                .write(path, value)
                .map_err(|e| root_error(target, Some(value), e)),
            Target::Nic { iface, key } => {
                let et = self.ethtool(target)?;
                let k = Self::key(target, key)?;
                nic::set(et, iface, &k, value).map_err(|e| nic_error(target, Some(value), e))
            }
            Target::Service { name } => {
                let r = match value {
                    "inactive" => self.services.stop(name),
                    "active" => self.services.start(name),
                    other => {
                        return Err(AccessError::Failed {
                            target: target.to_string(),
                            why: format!("a service is active or inactive, not {other:?}"),
                        });
                    }
                };
                r.map_err(|e| AccessError::Failed {
                    target: target.to_string(),
                    why: e.to_string(),
                })
            }
            Target::HostOp {
                op: op @ cpuset::HostOp::CreateDir { path, created },
            } if value != "directory" => {
                // Only the directory the apply created goes, checked again
                // right before; without its identity (an apply stopped
                // between mkdir and recording it), only while empty.
                let failed = |why: String| AccessError::Failed {
                    target: target.to_string(),
                    why,
                };
                crate::scope::check_created_dir(&self.root, path, *created).map_err(failed)?;
                let r = if created.is_some() {
                    op.undo(&self.root).map(drop).map_err(|e| e.to_string())
                } else {
                    self.root.remove_dir(path).map_err(|e| {
                        format!(
                            "{e} (its identity was never recorded, so only an empty directory \
                             is removed: move its processes out and rmdir it by hand)"
                        )
                    })
                };
                r.map_err(failed)
            }
            Target::HostOp { op } => {
                let r = if value == op.new_value() {
                    op.apply(&self.root).map(|()| None)
                } else {
                    op.undo(&self.root)
                };
                match r {
                    Ok(None) => Ok(()),
                    Ok(Some(why)) => Err(AccessError::Skipped {
                        target: target.to_string(),
                        why,
                    }),
                    Err(e) => Err(AccessError::Failed {
                        target: target.to_string(),
                        why: e.to_string(),
                    }),
                }
            }
        }
    }

    fn check(&self, target: &Target) -> Result<(), String> {
        let cpuset = cpuset::detect_cpuset(&self.root).map_err(|e| e.to_string())?;
        let exists = |iface: &str| hftnet_sys::sock::if_index(iface).is_ok();
        crate::scope::check_target(&self.root, cpuset.as_ref(), &exists, target)?;
        if let Target::HostOp {
            op: cpuset::HostOp::CreateDir { path, created },
        } = target
        {
            crate::scope::check_created_dir(&self.root, path, *created)?;
        }
        Ok(())
    }

    fn dir_id(&self, path: &str) -> Option<crate::scope::DirId> {
        self.root.dir_id(path).ok().flatten()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::services::FakeServices;

    struct Tree(std::path::PathBuf);

    impl Drop for Tree {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.0);
        }
    }

    fn tree(name: &str) -> Tree {
        let d = std::env::temp_dir().join(format!("hftnet-access-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&d);
        for (p, v) in [
            ("proc/sys/net/core/busy_poll", "0\n"),
            (
                "sys/kernel/mm/transparent_hugepage/enabled",
                "always [madvise] never\n",
            ),
            ("proc/irq/24/smp_affinity_list", "0-3\n"),
            ("sys/fs/cgroup/cpuset/cpuset.cpus", "0-3\n"),
            ("tmp/x", "secret\n"),
        ] {
            let f = d.join(p);
            std::fs::create_dir_all(f.parent().unwrap()).unwrap();
            std::fs::write(f, v).unwrap();
        }
        Tree(d)
    }

    fn dir_plan(path: &str) -> crate::plan::Plan {
        crate::plan::Plan {
            changes: vec![crate::plan::Change {
                target: Target::HostOp {
                    op: cpuset::HostOp::CreateDir {
                        path: path.into(),
                        created: None,
                    },
                },
                old: "absent".into(),
                new: "directory".into(),
                why: String::new(),
                best_effort: false,
            }],
            ..crate::plan::Plan::default()
        }
    }

    fn snapshot() -> crate::plan::Snapshot {
        crate::plan::Snapshot {
            format: crate::plan::SNAPSHOT_FORMAT.into(),
            host: crate::plan::HostId {
                machine_id: "m".into(),
                hostname: "h".into(),
            },
            created_unix: 0,
            profile: "t".into(),
            entries: vec![],
        }
    }

    #[test]
    fn a_created_cgroup_is_removed_only_while_it_is_the_one_created() {
        use crate::plan::{SnapshotError, apply, revert};
        let t = tree("cgroup");
        let services = FakeServices::new(&[]);
        let s = System {
            root: Root::at(&t.0),
            ethtool: None,
            services: &services,
        };
        let dir = t.0.join("sys/fs/cgroup/cpuset/hftnet");
        let snap_path = t.0.join("snap.json");
        let mut snap = snapshot();
        let r = apply(
            &dir_plan("sys/fs/cgroup/cpuset/hftnet"),
            &s,
            &mut snap,
            &snap_path,
        )
        .unwrap();
        assert!(r.failed.is_none(), "{r:?}");
        assert!(dir.is_dir());
        let Target::HostOp {
            op: cpuset::HostOp::CreateDir { created, .. },
        } = &snap.entries[0].target
        else {
            panic!("{snap:?}")
        };
        assert!(created.is_some(), "the identity is recorded: {snap:?}");
        // Someone replaces the directory: another inode, never removed.
        // (The old one is kept under another name, so its inode is not reused.)
        std::fs::rename(&dir, t.0.join("sys/fs/cgroup/cpuset/other")).unwrap();
        std::fs::create_dir(&dir).unwrap();
        let e = revert(&snap, &s, true).unwrap_err();
        assert!(
            matches!(e, SnapshotError::OutOfScope { entry: 1, .. }),
            "{e}"
        );
        assert!(
            e.to_string()
                .contains("not the directory the apply created"),
            "{e}"
        );
        assert!(dir.is_dir(), "left alone");
        // Not one of ours, or not below the cpuset mount: refused whole.
        for bad in ["sys/fs/cgroup/cpuset/other", "sys/fs/cgroup/hftnet", "tmp"] {
            let mut snap = snapshot();
            let e = apply(&dir_plan(bad), &s, &mut snap, &t.0.join("never.json")).unwrap_err();
            assert!(
                matches!(e, SnapshotError::PlanOutOfScope { change: 1, .. }),
                "{e}"
            );
            assert!(!t.0.join("never.json").exists(), "nothing written");
        }
        // The very directory: removed, and reverting twice is safe.
        std::fs::remove_dir(&dir).unwrap();
        let mut snap = snapshot();
        std::fs::remove_file(&snap_path).unwrap();
        apply(
            &dir_plan("sys/fs/cgroup/cpuset/hftnet"),
            &s,
            &mut snap,
            &snap_path,
        )
        .unwrap();
        let r = revert(&snap, &s, false).unwrap();
        assert_eq!((r.conflicts, r.failures), (0, 0), "{r:?}");
        assert!(!dir.exists());
        let r = revert(&snap, &s, false).unwrap();
        assert_eq!(r.outcomes[0].result, "already restored", "{r:?}");
        // Without a recorded identity (an apply stopped right after mkdir),
        // only an empty directory is removed.
        std::fs::create_dir(&dir).unwrap();
        std::fs::write(dir.join("cgroup.procs"), "42\n").unwrap();
        snap.entries[0].state = crate::plan::EntryState::Pending;
        if let Target::HostOp {
            op: cpuset::HostOp::CreateDir { created, .. },
        } = &mut snap.entries[0].target
        {
            *created = None;
        }
        let r = revert(&snap, &s, false).unwrap();
        assert_eq!(r.failures, 1, "{r:?}");
        assert!(
            r.outcomes[0].result.contains("only an empty directory"),
            "{r:?}"
        );
        assert!(dir.join("cgroup.procs").exists());
        std::fs::remove_file(dir.join("cgroup.procs")).unwrap();
        let r = revert(&snap, &s, false).unwrap();
        assert_eq!(r.failures, 0, "{r:?}");
        assert!(!dir.exists());
    }

    #[test]
    fn files_sysctls_services_and_missing_things() {
        let t = tree("basic");
        let services = FakeServices::new(&[("irqbalance", true)]);
        let s = System {
            root: Root::at(&t.0),
            ethtool: None,
            services: &services,
        };
        let sysctl = Target::Sysctl {
            name: "net.core.busy_poll".into(),
        };
        assert_eq!(s.read(&sysctl).unwrap().as_deref(), Some("0"));
        s.write(&sysctl, "50").unwrap();
        assert_eq!(s.read(&sysctl).unwrap().as_deref(), Some("50"));
        let thp = Target::File {
            path: "sys/kernel/mm/transparent_hugepage/enabled".into(),
        };
        assert_eq!(
            s.read(&thp).unwrap().as_deref(),
            Some("madvise"),
            "the bracketed word"
        );
        let missing = Target::Sysctl {
            name: "net.core.no_such".into(),
        };
        assert_eq!(s.read(&missing).unwrap(), None);
        let irqb = Target::Service {
            name: "irqbalance".into(),
        };
        assert_eq!(s.read(&irqb).unwrap().as_deref(), Some("active"));
        s.write(&irqb, "inactive").unwrap();
        assert_eq!(s.read(&irqb).unwrap().as_deref(), Some("inactive"));
        let nic = Target::Nic {
            iface: "veth0".into(),
            key: "feature.gro".into(),
        };
        let e = s.read(&nic).unwrap_err();
        assert!(matches!(e, AccessError::Failed { .. }), "{e}");
        let dir = Target::HostOp {
            op: cpuset::HostOp::CreateDir {
                path: "sys/fs/cgroup/cpuset/hftnet".into(),
                created: None,
            },
        };
        assert_eq!(s.read(&dir).unwrap().as_deref(), Some("absent"));
        // Done with its new value, undone with its old one.
        s.write(&dir, "directory").unwrap();
        assert!(t.0.join("sys/fs/cgroup/cpuset/hftnet").is_dir());
        assert_eq!(s.read(&dir).unwrap().as_deref(), Some("directory"));
        s.write(&dir, "absent").unwrap();
        assert!(!t.0.join("sys/fs/cgroup/cpuset/hftnet").exists());
    }
}
