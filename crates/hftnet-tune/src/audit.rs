//! `tune audit`: facts, compared with a profile, as findings.
//!
//! [`prepare`] gathers what the planner needs (CPUs, the interfaces'
//! interrupts, C-states, the cpuset changes that would isolate the chosen
//! CPUs) by reading only; [`findings`] turns a [`Plan`] and the facts into
//! one line per setting: current value, recommended value, why, the command
//! that fixes it, and whether it applies to this device.

use serde::Serialize;

use crate::cpuset::{self, IsolationOptions};
use crate::facts::{self, HostFacts};
use crate::plan::{Plan, PlanInput, Target};
use crate::profile::{Profile, Want};
use crate::root::{Root, parse_cpu_list};

/// Why the inputs of a plan could not be gathered.
#[derive(Debug, thiserror::Error)]
pub enum PrepareError {
    /// An interface that does not exist here.
    #[error("no interface {0:?} in this network namespace (see `ip link`); name one with --iface")]
    NoInterface(String),
    /// A CPU that is not online.
    #[error("CPU {cpu} is not online (online: {online}); choose --cpus among them")]
    CpuOffline {
        /// The CPU.
        cpu: usize,
        /// The online CPUs.
        online: String,
    },
    /// Reading the machine failed.
    #[error(transparent)]
    Root(#[from] crate::root::RootError),
}

/// What the planner needs, read from the machine; plus notes on what could
/// not be planned (e.g. no cpuset controller).
///
/// # Errors
/// See [`PrepareError`].
pub fn prepare(
    root: &Root,
    profile: &Profile,
    ifaces: &[String],
    cpus: &[usize],
) -> Result<(PlanInput, Vec<String>), PrepareError> {
    let mut notes = Vec::new();
    let online = root
        .read("sys/devices/system/cpu/online")?
        .and_then(|s| parse_cpu_list(&s).ok())
        .unwrap_or_default();
    for &cpu in cpus {
        if !online.is_empty() && !online.contains(&cpu) {
            return Err(PrepareError::CpuOffline {
                cpu,
                online: crate::root::format_cpu_list(&online),
            });
        }
    }
    let mut input = PlanInput {
        cpus: cpus.to_vec(),
        all_cpus: online.clone(),
        ifaces: ifaces.to_vec(),
        ..PlanInput::default()
    };
    for iface in ifaces {
        // sysfs shows the namespace that mounted it; the ioctl asks the
        // kernel in this thread's namespace (a lab's, say).
        let in_sysfs = root.exists(&format!("sys/class/net/{iface}"));
        if !in_sysfs && hftnet_sys::sock::if_index(iface).is_err() {
            return Err(PrepareError::NoInterface(iface.clone()));
        }
        let irqs = if in_sysfs {
            facts::discover_irqs(root, iface)?
        } else {
            Vec::new()
        };
        if irqs.is_empty() {
            notes.push(format!(
                "{iface} has no interrupts of its own (a virtual device, or another namespace's): no IRQ to pin"
            ));
        }
        input.irqs.extend(irqs.iter().map(|i| i.irq));
    }
    for &cpu in cpus {
        let base = format!("sys/devices/system/cpu/cpu{cpu}");
        if root.exists(&format!("{base}/cpufreq/scaling_governor")) {
            input.governor_cpus.push(cpu);
        }
        for name in root.list(&format!("{base}/cpuidle"))?.unwrap_or_default() {
            let Some(k) = name
                .strip_prefix("state")
                .and_then(|k| k.parse::<usize>().ok())
            else {
                continue;
            };
            if let Some(lat) = root
                .read(&format!("{base}/cpuidle/{name}/latency"))?
                .and_then(|v| v.parse::<u64>().ok())
            {
                input.cstates.push((cpu, k, lat));
            }
        }
    }
    input.irqbalance = !facts::find_processes(root, "irqbalance")?.is_empty();
    let isolate = profile.get(&Want::Isolate).is_some_and(|s| s.value == "on");
    if isolate && !cpus.is_empty() {
        let opts = IsolationOptions {
            move_processes: true,
            move_irqs: true,
        };
        match cpuset::plan_cpu_isolation(root, cpus, &opts) {
            Ok(p) => {
                input.isolation = p.changes;
                notes.extend(p.notes);
            }
            Err(e) => notes.push(format!("CPU isolation cannot be planned: {e}")),
        }
    }
    Ok((input, notes))
}

/// One line of the audit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Finding {
    /// `change`, `ok`, `not supported`, `not present`, `reboot`, `info`.
    pub status: String,
    /// What.
    pub item: String,
    /// The value now.
    pub current: Option<String>,
    /// The value the profile recommends.
    pub recommended: Option<String>,
    /// Why (the effect the seeds or tuned claim for it).
    pub why: String,
    /// The command that fixes it by hand.
    pub fix: Option<String>,
}

/// The command that makes a change by hand.
#[must_use]
pub fn fix_command(target: &Target, value: &str) -> String {
    match target {
        Target::Sysctl { name } => format!("sysctl -w {name}='{value}'"),
        Target::File { path } => format!("echo {value} > /{path}"),
        Target::Service { name } => {
            let verb = if value == "inactive" { "stop" } else { "start" };
            format!("systemctl {verb} {name}")
        }
        Target::Nic { iface, key } => {
            let (section, field) = key.split_once('.').unwrap_or((key.as_str(), ""));
            match section {
                "feature" => format!("ethtool -K {iface} {field} {value}"),
                "coalesce" => format!("ethtool -C {iface} {field} {value}"),
                "ring" => format!("ethtool -G {iface} {field} {value}"),
                "channels" => format!("ethtool -L {iface} {field} {value}"),
                "pause" => format!("ethtool -A {iface} {field} {value}"),
                "rss" => format!("ethtool -X {iface} equal {value}"),
                _ => format!("hftnet tune apply --iface {iface} (key {key})"),
            }
        }
        Target::HostOp { .. } => "hftnet tune apply --cpus LIST (cpuset isolation)".into(),
    }
}

/// The audit: one finding per planned change and per skipped setting, the
/// kernel command line, and the facts that matter but no profile sets.
#[must_use]
pub fn findings(plan: &Plan, facts: &HostFacts, profile: &Profile) -> Vec<Finding> {
    let mut out = Vec::new();
    let mut moved = 0usize;
    for c in &plan.changes {
        if let Target::HostOp {
            op: crate::cpuset::HostOp::MoveProcess { .. },
        } = c.target
        {
            moved += 1;
            continue;
        }
        out.push(Finding {
            status: "change".into(),
            item: c.target.to_string(),
            current: Some(c.old.clone()),
            recommended: Some(c.new.clone()),
            why: c.why.clone(),
            fix: Some(fix_command(&c.target, &c.new)),
        });
    }
    if moved > 0 {
        out.push(Finding {
            status: "change".into(),
            item: format!("{moved} processes"),
            current: Some("may run on the chosen CPUs".into()),
            recommended: Some("moved to the housekeeping cpuset".into()),
            why: "they would preempt the trading threads on the chosen CPUs".into(),
            fix: Some("hftnet tune apply --cpus LIST (cpuset isolation)".into()),
        });
    }
    for s in &plan.skipped {
        let status = match s.reason.as_str() {
            "already set" => "ok",
            r if r.starts_with("not supported") => "not supported",
            r if r.starts_with("give --cpus") => "needs --cpus",
            _ => "not present",
        };
        out.push(Finding {
            status: status.into(),
            item: s.target.clone(),
            current: (status == "ok").then(|| s.wanted.clone()),
            recommended: Some(s.wanted.clone()),
            why: s.reason.clone(),
            fix: None,
        });
    }
    let cmd = &facts.cmdline;
    let current: Vec<String> = [
        ("isolcpus", &cmd.isolcpus),
        ("nohz_full", &cmd.nohz_full),
        ("rcu_nocbs", &cmd.rcu_nocbs),
    ]
    .iter()
    .filter_map(|(k, v)| v.as_ref().map(|p| format!("{k}={}", p.value)))
    .collect();
    for param in &plan.reboot {
        let done = current.iter().any(|c| c == param);
        out.push(Finding {
            status: if done { "ok" } else { "reboot" }.into(),
            item: format!(
                "kernel command line {}",
                param.split('=').next().unwrap_or(param)
            ),
            current: Some(if current.is_empty() {
                "-".into()
            } else {
                current.join(" ")
            }),
            recommended: Some(param.clone()),
            why: profile.cmdline_why.clone(),
            fix: (!done).then(|| {
                format!(
                    "add {param} to the kernel command line (e.g. GRUB_CMDLINE_LINUX in /etc/default/grub), then reboot"
                )
            }),
        });
    }
    let info = |item: &str, current: String, why: &str| Finding {
        status: "info".into(),
        item: item.into(),
        current: Some(current),
        recommended: None,
        why: why.into(),
        fix: None,
    };
    if facts.irqbalance.running {
        out.push(info(
            "irqbalance",
            format!("running (pids {:?})", facts.irqbalance.pids),
            "it moves interrupts every 10 s, undoing any pinning",
        ));
    }
    if let Some(smt) = &facts.cpus.smt_control {
        out.push(info(
            "smt",
            smt.clone(),
            "a sibling hyperthread shares the core's caches and pipelines: turn SMT off (or keep siblings idle) on latency-critical cores",
        ));
    }
    let b = &facts.bypass;
    let stacks: Vec<&str> = [("onload", b.onload), ("vma", b.vma), ("xlio", b.xlio)]
        .iter()
        .filter(|(_, on)| *on)
        .map(|(n, _)| *n)
        .collect();
    out.push(info(
        "kernel bypass stacks",
        if stacks.is_empty() {
            "none found (no onload in PATH, no module, no LD_PRELOAD)".into()
        } else {
            stacks.join(", ")
        },
        "hftnet's kernel-socket transports (udp, tcp, mcast) run under OpenOnload, VMA or XLIO unchanged: start them with `onload hftnet ...`",
    ));
    if let Some(h) = &facts.hugepages.total {
        out.push(info(
            "hugepages",
            format!("{h} total"),
            "AF_XDP and DPDK want huge pages for their packet buffers",
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::{Change, Skipped};

    #[test]
    fn fix_commands_name_the_tool() {
        let nic = |k: &str| Target::Nic {
            iface: "eth1".into(),
            key: k.into(),
        };
        assert_eq!(
            fix_command(&nic("feature.gro"), "off"),
            "ethtool -K eth1 gro off"
        );
        assert_eq!(
            fix_command(&nic("coalesce.rx-usecs"), "0"),
            "ethtool -C eth1 rx-usecs 0"
        );
        assert_eq!(
            fix_command(&nic("channels.combined"), "4"),
            "ethtool -L eth1 combined 4"
        );
        assert_eq!(
            fix_command(
                &Target::Sysctl {
                    name: "net.ipv4.tcp_rmem".into()
                },
                "4096 87380 134217728"
            ),
            "sysctl -w net.ipv4.tcp_rmem='4096 87380 134217728'"
        );
        assert_eq!(
            fix_command(
                &Target::Service {
                    name: "irqbalance".into()
                },
                "inactive"
            ),
            "systemctl stop irqbalance"
        );
    }

    #[test]
    fn findings_cover_changes_skips_and_the_command_line() {
        let profile = Profile::load("latency").unwrap().expand(&[1], &[0, 1]);
        let plan = Plan {
            changes: vec![Change {
                target: Target::Sysctl {
                    name: "net.core.busy_poll".into(),
                },
                old: "0".into(),
                new: "50".into(),
                why: "poll".into(),
                best_effort: false,
            }],
            skipped: vec![
                Skipped {
                    target: "veth0 coalesce.rx-usecs".into(),
                    wanted: "0".into(),
                    reason: "not supported by the driver".into(),
                },
                Skipped {
                    target: "sysctl net.core.busy_read".into(),
                    wanted: "50".into(),
                    reason: "already set".into(),
                },
            ],
            reboot: vec!["nohz_full=1".into()],
        };
        let f = findings(&plan, &HostFacts::default(), &profile);
        let by = |item: &str| f.iter().find(|x| x.item == item).unwrap();
        let c = by("sysctl net.core.busy_poll");
        assert_eq!(
            (
                c.status.as_str(),
                c.current.as_deref(),
                c.recommended.as_deref()
            ),
            ("change", Some("0"), Some("50"))
        );
        assert_eq!(c.fix.as_deref(), Some("sysctl -w net.core.busy_poll='50'"));
        assert_eq!(by("veth0 coalesce.rx-usecs").status, "not supported");
        assert_eq!(by("sysctl net.core.busy_read").status, "ok");
        let k = by("kernel command line nohz_full");
        assert_eq!(k.status, "reboot");
        assert!(k.fix.as_deref().unwrap().contains("nohz_full=1"));
        assert!(f.iter().any(|x| x.item == "kernel bypass stacks"));
    }
}
