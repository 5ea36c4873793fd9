//! Tuning snapshots (`hftnet tune revert --snapshot FILE`) from arbitrary
//! bytes, read by `Snapshot::parse` (what `Snapshot::load` does once the
//! file passed its ownership checks), then reverted against an in-memory
//! machine. Nothing panics, and:
//! - a refusal names the file; what is accepted carries the format marker,
//!   and, unless forced, this machine's id; forcing accepts a superset;
//! - the accepted snapshot written back as JSON reads the same;
//! - revert writes only to targets the snapshot names, only the old value
//!   of an entry it may revert, each entry at most once, and without
//!   `force` only over a value the apply had set (or for a host operation,
//!   which is undone by its own code); every entry it touches is reported;
//! - a snapshot with one entry the machine refuses (a file no apply writes,
//!   an interface that does not exist) is refused whole, `force` or not,
//!   and nothing is written.
#![no_main]

use std::cell::RefCell;

use hftnet_tune::plan::{
    Access, AccessError, EntryState, HostId, SNAPSHOT_FORMAT, Snapshot, SnapshotError, Target,
    revert, same_value,
};
use hftnet_tune::scope::{self, DirId};
use libfuzzer_sys::fuzz_target;

/// A machine whose every target holds the value the snapshot's apply set
/// (or its old value, every other entry), and that records writes.
struct Machine {
    values: RefCell<Vec<(Target, String)>>,
    /// (target, value written, value it held before).
    writes: RefCell<Vec<(Target, String, Option<String>)>>,
}

impl Access for Machine {
    fn read(&self, target: &Target) -> Result<Option<String>, AccessError> {
        Ok(self
            .values
            .borrow()
            .iter()
            .find(|(t, _)| t == target)
            .map(|(_, v)| v.clone()))
    }

    fn write(&self, target: &Target, value: &str) -> Result<(), AccessError> {
        let before = self.read(target)?;
        self.writes
            .borrow_mut()
            .push((target.clone(), value.to_owned(), before));
        let mut values = self.values.borrow_mut();
        if let Some(slot) = values.iter_mut().find(|(t, _)| t == target) {
            slot.1 = value.to_owned();
        }
        Ok(())
    }

    /// The files the real check allows (no cpuset mount here), one
    /// interface, everything else.
    fn check(&self, target: &Target) -> Result<(), String> {
        match target {
            Target::File { path } => scope::file_kind(path, None).map(drop),
            Target::Nic { iface, .. } if iface != "lab0" => Err(format!("no interface {iface}")),
            _ => Ok(()),
        }
    }

    fn dir_id(&self, _: &str) -> Option<DirId> {
        None
    }
}

fuzz_target!(|data: &[u8]| {
    let host = HostId {
        machine_id: "0123456789abcdef0123456789abcdef".into(),
        hostname: "box".into(),
    };
    let strict = Snapshot::parse("fuzz.json", data, &host, false);
    let forced = Snapshot::parse("fuzz.json", data, &host, true);
    let s = match (strict, forced) {
        (Ok(a), Ok(b)) => {
            assert_eq!(a.host.machine_id, host.machine_id);
            assert_eq!(a, b);
            a
        }
        (Err(e), Ok(b)) => {
            assert!(e.to_string().contains("fuzz.json"), "{e}");
            assert_ne!(b.host.machine_id, host.machine_id);
            b
        }
        (Err(a), Err(b)) => {
            assert!(a.to_string().contains("fuzz.json"), "{a}");
            assert!(b.to_string().contains("fuzz.json"), "{b}");
            return;
        }
        (Ok(_), Err(e)) => panic!("accepted, but refused when forced: {e}"),
    };
    assert_eq!(s.format, SNAPSHOT_FORMAT);

    let json = serde_json::to_vec(&s).expect("a snapshot serializes");
    let back = Snapshot::parse("again.json", &json, &host, true).expect("written back, read back");
    assert_eq!(back, s);

    for force in [false, true] {
        let m = Machine {
            values: RefCell::new(Vec::new()),
            writes: RefCell::new(Vec::new()),
        };
        for (i, e) in s.entries.iter().enumerate() {
            if !m.values.borrow().iter().any(|(t, _)| *t == e.target) {
                let v = if i % 2 == 0 { &e.new } else { &e.old };
                m.values.borrow_mut().push((e.target.clone(), v.clone()));
            }
        }
        let in_scope = s.entries.iter().all(|e| m.check(&e.target).is_ok());
        let report = revert(&s, &m, force);
        let writes = m.writes.into_inner();
        let report = match report {
            Ok(r) => {
                assert!(in_scope, "a snapshot with a refused target was reverted");
                r
            }
            Err(SnapshotError::OutOfScope { entry, .. }) => {
                assert!(writes.is_empty(), "refused, yet wrote {writes:?}");
                assert!((1..=s.entries.len()).contains(&entry), "entry {entry}");
                continue;
            }
            Err(e) => panic!("revert failed otherwise: {e}"),
        };
        assert!(report.outcomes.len() <= s.entries.len());
        assert!(writes.len() <= report.outcomes.len());
        let revertable = |st: EntryState| {
            matches!(
                st,
                EntryState::Applied | EntryState::Pending | EntryState::RollbackFailed
            )
        };
        for (t, v, _) in &writes {
            assert!(
                s.entries
                    .iter()
                    .any(|e| &e.target == t && &e.old == v && revertable(e.state)),
                "revert wrote {v:?} to {t}, which no revertable entry restores"
            );
        }
        if !force {
            // Without force, a value is only overwritten where the apply's
            // value is found (host operations are undone by their own code).
            for (t, v, before) in &writes {
                if matches!(t, Target::HostOp { .. }) {
                    continue;
                }
                let before = before.as_deref().expect("a value that exists");
                assert!(
                    s.entries.iter().any(|e| &e.target == t
                        && &e.old == v
                        && revertable(e.state)
                        && same_value(before, &e.new)),
                    "revert overwrote {before:?} on {t} without force"
                );
            }
        }
        let _ = report.conflicts + report.failures;
    }
});
