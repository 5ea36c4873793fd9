//! `hftnet tune audit | apply | revert`: read the host's tuning, change it
//! to a profile with a snapshot first, and put it back exactly.

use std::os::unix::fs::{DirBuilderExt, MetadataExt};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::AtomicBool;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use clap::{Args, Subcommand};
use hftnet_bench::clock::Clock;
use hftnet_sys::ethtool::Ethtool;
use hftnet_tune::access::System;
use hftnet_tune::audit::{Finding, findings, prepare};
use hftnet_tune::facts::HostFacts;
use hftnet_tune::guard::default_routes_via;
use hftnet_tune::jitter::{JitterConfig, run_jitter};
use hftnet_tune::plan::{
    HostId, Plan, SNAPSHOT_FORMAT, Snapshot, Target, apply, check_entries, plan, revert,
};
use hftnet_tune::profile::{Profile, Want};
use hftnet_tune::root::{Root, format_cpu_list, parse_cpu_list};
use hftnet_tune::services::Systemctl;
use serde_json::json;

use crate::util::{CpuList, Report, parse_cpus, parse_duration};

/// Where snapshots go unless `--snapshot` says otherwise: root's own
/// directory (0700), so nobody else can plant or edit one.
pub(crate) const SNAPSHOT_DIR: &str = "/var/lib/hftnet";

#[derive(Debug, Args)]
pub struct TuneArgs {
    #[command(subcommand)]
    command: TuneCommand,
}

#[derive(Debug, Subcommand)]
enum TuneCommand {
    /// Read the host's NIC, IRQ, CPU and sysctl settings and compare them with a profile.
    /// Never writes anything.
    Audit(AuditArgs),
    /// Change the host to a profile: prints the plan (old → new) and changes nothing
    /// without --yes; with --yes writes a snapshot first, then applies.
    Apply(ApplyArgs),
    /// Restore the values of a snapshot written by `tune apply`.
    Revert(RevertArgs),
}

#[derive(Debug, Args)]
struct Common {
    /// Interface to audit or tune (repeat for several); nothing else is touched.
    #[arg(long = "iface", value_parser = crate::util::parse_iface)]
    ifaces: Vec<String>,
    /// CPUs the trading threads run on, e.g. 2-3 (for IRQ affinity, isolation, C-states).
    #[arg(long, value_parser = parse_cpus)]
    cpus: Option<CpuList>,
    /// Profile: latency, throughput, or the path of a TOML profile file.
    #[arg(long, default_value = "latency")]
    profile: String,
    /// Read and write /proc and /sys under this directory instead of / (for tests).
    #[arg(long, hide = true, default_value = "/")]
    root: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
struct AuditArgs {
    #[command(flatten)]
    common: Common,
    /// Also measure OS jitter on the CPUs (see `hftnet jitter`).
    #[arg(long)]
    jitter: bool,
    /// How long the jitter measurement runs.
    #[arg(long, default_value = "5s", value_parser = parse_duration)]
    jitter_duration: Duration,
}

#[derive(Debug, Args)]
struct ApplyArgs {
    #[command(flatten)]
    common: Common,
    /// Really change the host (without it, only the plan is printed).
    #[arg(long)]
    yes: bool,
    /// Where to write the snapshot, a new file (default:
    /// /var/lib/hftnet/tune-snapshot-TIME-PID.json, in a directory only root can enter).
    #[arg(long)]
    snapshot: Option<PathBuf>,
    /// Allow tuning the interface that carries the default route.
    #[arg(long)]
    i_know: bool,
}

#[derive(Debug, Args)]
struct RevertArgs {
    /// The snapshot written by `tune apply --yes`.
    snapshot: PathBuf,
    /// Restore values changed by someone else since, and snapshots of another host.
    #[arg(long)]
    force: bool,
    /// Read and write /proc and /sys under this directory instead of / (for tests).
    #[arg(long, hide = true, default_value = "/")]
    root: PathBuf,
    /// Print one JSON object instead of text.
    #[arg(long)]
    json: bool,
}

pub fn tune(a: TuneArgs) -> Result<ExitCode> {
    match a.command {
        TuneCommand::Audit(a) => audit(a),
        TuneCommand::Apply(a) => apply_cmd(a),
        TuneCommand::Revert(a) => revert_cmd(a),
    }
}

/// Everything audit and apply share: the profile expanded for the CPUs,
/// the planner's input, the plan.
struct Session {
    root: Root,
    profile: Profile,
    cpus: Vec<usize>,
    plan: Plan,
    notes: Vec<String>,
    ethtool: Option<Ethtool>,
}

fn session(c: &Common, services: &Systemctl) -> Result<Session> {
    let root = Root::at(&c.root);
    let online = root
        .read("sys/devices/system/cpu/online")?
        .and_then(|s| parse_cpu_list(&s).ok())
        .unwrap_or_default();
    let cpus = c.cpus.clone().map(|l| l.0).unwrap_or_default();
    let profile = Profile::load(&c.profile)?.expand(&cpus, &online);
    let (input, notes) = prepare(&root, &profile, &c.ifaces, &cpus)?;
    let ethtool = if c.ifaces.is_empty() {
        None
    } else {
        Some(Ethtool::open().context("opening the ethtool interface")?)
    };
    let access = System {
        root: root.clone(),
        ethtool,
        services,
    };
    let plan = plan(&profile, &input, &access)?;
    let ethtool = access.ethtool;
    Ok(Session {
        root,
        profile,
        cpus,
        plan,
        notes,
        ethtool,
    })
}

fn print_findings(f: &[Finding]) {
    println!(
        "{:<14} {:<52} {:<22} RECOMMENDED",
        "STATUS", "ITEM", "CURRENT"
    );
    for x in f {
        println!(
            "{:<14} {:<52} {:<22} {}",
            x.status,
            x.item,
            x.current.as_deref().unwrap_or("-"),
            x.recommended.as_deref().unwrap_or("-")
        );
        if !x.why.is_empty() && x.status != "ok" {
            println!("{:<14} why: {}", "", x.why);
        }
        if let Some(fix) = &x.fix {
            println!("{:<14} fix: {}", "", fix);
        }
    }
}

fn audit(a: AuditArgs) -> Result<ExitCode> {
    let services = Systemctl::default();
    let s = session(&a.common, &services)?;
    let ifaces: Vec<&str> = a.common.ifaces.iter().map(String::as_str).collect();
    let facts = HostFacts::read(&s.root, &ifaces);
    let mut nics = serde_json::Map::new();
    if let Some(et) = &s.ethtool {
        for iface in &a.common.ifaces {
            let r = hftnet_tune::nic::audit(et, iface, &s.root.path("sys")?)
                .with_context(|| format!("auditing {iface}"))?;
            nics.insert(iface.clone(), serde_json::to_value(r)?);
        }
    }
    let list = findings(&s.plan, &facts, &s.profile);
    let jitter = if a.jitter {
        let cpus = if s.cpus.is_empty() {
            hftnet_sys::sched::allowed_cpus()?
        } else {
            s.cpus.clone()
        };
        let cfg = JitterConfig {
            cpus,
            duration: a.jitter_duration,
            threshold_ns: 1000,
        };
        cfg.validate()?;
        let stop = AtomicBool::new(false);
        Some(serde_json::to_value(run_jitter(
            &cfg,
            Clock::new(),
            &stop,
        )?)?)
    } else {
        None
    };
    if a.common.json {
        let v = json!({
            "command": "tune audit",
            "profile": s.profile.name,
            "ifaces": a.common.ifaces,
            "cpus": format_cpu_list(&s.cpus),
            "findings": list,
            "notes": s.notes,
            "facts": facts,
            "nics": nics,
            "jitter": jitter,
        });
        println!("{v}");
        return Ok(ExitCode::SUCCESS);
    }
    let mut rep = Report::default();
    rep.put("command", "tune audit")
        .put("profile", s.profile.name.clone())
        .put("description", s.profile.description.clone())
        .put("ifaces", a.common.ifaces.join(","))
        .put("cpus", format_cpu_list(&s.cpus));
    rep.print(false);
    print_findings(&list);
    for n in &s.notes {
        println!("note: {n}");
    }
    for (iface, r) in &nics {
        let mut rep = Report::default();
        rep.put(iface, r.clone());
        rep.print(false);
    }
    if let Some(j) = jitter {
        let mut rep = Report::default();
        rep.put("jitter", j);
        rep.print(false);
    }
    Ok(ExitCode::SUCCESS)
}

/// The directory snapshots go to, [`SNAPSHOT_DIR`]: created root-only
/// (0700) if missing, and refused unless it is a directory only root can
/// enter (nobody else may plant or edit a snapshot that `revert` would
/// write back as root).
pub(crate) fn snapshot_dir() -> Result<PathBuf> {
    let dir = PathBuf::from(SNAPSHOT_DIR);
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(&dir)
        .with_context(|| format!("creating the snapshot directory {SNAPSHOT_DIR}"))?;
    let meta =
        std::fs::symlink_metadata(&dir).with_context(|| format!("inspecting {SNAPSHOT_DIR}"))?;
    if !meta.is_dir() || meta.uid() != 0 || meta.mode() & 0o077 != 0 {
        bail!(
            "{SNAPSHOT_DIR} is not a directory only root can enter (owner uid {}, mode {:o}): fix \
             it (chown root, chmod 700) or name a file with --snapshot",
            meta.uid(),
            meta.mode() & 0o7777
        );
    }
    Ok(dir)
}

/// This host's identity as snapshots record it.
pub(crate) fn host_id(root: &Root) -> Result<HostId> {
    let hostname = root
        .read("proc/sys/kernel/hostname")?
        .unwrap_or_else(|| "unknown".into());
    let machine_id = root
        .read("etc/machine-id")?
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| format!("hostname:{hostname}"));
    Ok(HostId {
        machine_id,
        hostname,
    })
}

fn apply_cmd(a: ApplyArgs) -> Result<ExitCode> {
    let c = &a.common;
    if c.ifaces.is_empty() && c.cpus.is_none() {
        bail!("name what to tune: --iface IF (repeatable) and/or --cpus LIST");
    }
    // With a fake tree nothing of this machine's interfaces is changed
    // (profiles that would are refused below), so there is no route to guard.
    if c.root == std::path::Path::new("/") && !a.i_know {
        for iface in &c.ifaces {
            if let Some(what) = default_routes_via(iface)? {
                bail!(
                    "{what}: tuning it can cut this machine off (and your SSH session); pass \
                     --i-know to do it anyway"
                );
            }
        }
    }
    refuse_fake_root_profile(c)?;
    let services = Systemctl::default();
    let s = session(c, &services)?;
    let plan_json = serde_json::to_value(&s.plan)?;
    if !a.yes {
        if c.json {
            println!(
                "{}",
                json!({"command": "tune apply", "dry_run": true, "profile": s.profile.name,
                       "plan": plan_json, "notes": s.notes})
            );
        } else {
            println!("# command: tune apply (plan only: nothing is changed without --yes)");
            println!("# profile: {}", s.profile.name);
            for ch in &s.plan.changes {
                println!(
                    "change {}: {:?} → {:?}   ({})",
                    ch.target, ch.old, ch.new, ch.why
                );
            }
            for sk in &s.plan.skipped {
                println!("skip   {}: {} ({})", sk.target, sk.wanted, sk.reason);
            }
            for r in &s.plan.reboot {
                println!("reboot kernel command line: add {r}");
            }
            for n in &s.notes {
                println!("note: {n}");
            }
            println!(
                "# {} changes planned; rerun with --yes to apply them (a snapshot is written first)",
                s.plan.changes.len()
            );
        }
        return Ok(ExitCode::SUCCESS);
    }
    let created_unix = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| d.as_secs());
    let path = match a.snapshot.clone() {
        Some(p) => p,
        None => snapshot_dir()?.join(format!(
            "tune-snapshot-{created_unix}-{}.json",
            std::process::id()
        )),
    };
    let mut snap = Snapshot {
        format: SNAPSHOT_FORMAT.into(),
        host: host_id(&s.root)?,
        created_unix,
        profile: s.profile.name.clone(),
        entries: Vec::new(),
    };
    let access = System {
        root: s.root.clone(),
        ethtool: s.ethtool,
        services: &services,
    };
    let report = apply(&s.plan, &access, &mut snap, &path)?;
    if c.json {
        println!(
            "{}",
            json!({"command": "tune apply", "dry_run": false, "profile": s.profile.name,
                   "snapshot": path.display().to_string(), "report": report, "notes": s.notes})
        );
    } else {
        println!("# command: tune apply");
        println!("# profile: {}", s.profile.name);
        println!("# snapshot: {}", path.display());
        for o in &report.outcomes {
            println!("{}: {:?} → {:?}: {}", o.target, o.old, o.new, o.result);
        }
        for r in &report.reboot {
            println!("needs a reboot: add {r} to the kernel command line");
        }
        println!("# undo with: hftnet tune revert {}", path.display());
    }
    if let Some(e) = &report.snapshot_error {
        eprintln!(
            "hftnet tune apply: the snapshot could not be updated ({e}); every change made was \
             recorded before it was made, and `hftnet tune revert {}` restores them",
            path.display()
        );
        return Ok(ExitCode::from(1));
    }
    if let Some(why) = &report.failed {
        if report.still_changed.is_empty() {
            eprintln!("hftnet tune apply: stopped and rolled back what it had changed: {why}");
        } else {
            eprintln!(
                "hftnet tune apply: stopped ({why}); the rollback FAILED for {}: still changed — \
                 restore them with `hftnet tune revert {}`",
                report.still_changed.join(", "),
                path.display()
            );
        }
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// With a fake tree (`--root` other than `/`), files are read and written
/// under it, but ethtool and systemctl would act on this machine: refused.
fn refuse_real_host_with_fake_root(root: &std::path::Path, targets: &[&Target]) -> Result<()> {
    if root == std::path::Path::new("/") {
        return Ok(());
    }
    if let Some(t) = targets
        .iter()
        .find(|t| matches!(t, Target::Nic { .. } | Target::Service { .. }))
    {
        bail!(
            "--root {} is a fake tree, but {t} would be changed on this machine (ethtool and \
             systemctl do not go through the tree): refusing; use a profile without [nic] and \
             stop_irqbalance, or drop --root",
            root.display()
        );
    }
    Ok(())
}

/// `tune apply` with a fake tree: a profile that would change interface
/// settings (ethtool) or stop irqbalance (systemctl) is refused before
/// anything is read, since those act on this machine, not on the tree.
fn refuse_fake_root_profile(c: &Common) -> Result<()> {
    if c.root == std::path::Path::new("/") {
        return Ok(());
    }
    let profile = Profile::load(&c.profile)?;
    let nic = !c.ifaces.is_empty()
        && profile
            .settings
            .iter()
            .any(|s| matches!(s.want, Want::Nic(_)));
    let service = profile
        .get(&Want::StopIrqbalance)
        .is_some_and(|s| s.value == "on");
    if nic || service {
        bail!(
            "--root {} is a fake tree, but profile {} changes {} on this machine (ethtool and \
             systemctl do not go through the tree): refusing; use a profile without {}, or \
             drop --root",
            c.root.display(),
            profile.name,
            if nic {
                "interface settings"
            } else {
                "the irqbalance service"
            },
            if nic { "[nic]" } else { "stop_irqbalance" },
        );
    }
    Ok(())
}

fn revert_cmd(a: RevertArgs) -> Result<ExitCode> {
    let root = Root::at(&a.root);
    let snap = Snapshot::load(&a.snapshot, &host_id(&root)?, a.force)?;
    // What an apply killed while rewriting the snapshot left beside it.
    for p in Snapshot::remove_stale_temporaries(&a.snapshot) {
        eprintln!(
            "hftnet tune revert: removed {}, left by an apply that was killed",
            p.display()
        );
    }
    let services = Systemctl::default();
    let needs_nic = snap
        .entries
        .iter()
        .any(|e| matches!(e.target, Target::Nic { .. }));
    let access = System {
        root,
        ethtool: if needs_nic {
            Some(Ethtool::open().context("opening the ethtool interface")?)
        } else {
            None
        },
        services: &services,
    };
    check_entries(&snap, &access)?;
    refuse_real_host_with_fake_root(
        &a.root,
        &snap.entries.iter().map(|e| &e.target).collect::<Vec<_>>(),
    )?;
    let r = revert(&snap, &access, a.force)?;
    if a.json {
        println!(
            "{}",
            json!({"command": "tune revert", "snapshot": a.snapshot.display().to_string(), "report": r})
        );
    } else {
        println!("# command: tune revert");
        println!("# snapshot: {}", a.snapshot.display());
        for o in &r.outcomes {
            println!("{}: {:?} → {:?}: {}", o.target, o.old, o.new, o.result);
        }
    }
    if r.conflicts > 0 {
        eprintln!(
            "hftnet tune revert: {} values were changed by someone else since the apply and were left alone; rerun with --force to restore them",
            r.conflicts
        );
        return Ok(ExitCode::from(1));
    }
    if r.failures > 0 {
        eprintln!(
            "hftnet tune revert: {} values could not be restored",
            r.failures
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
