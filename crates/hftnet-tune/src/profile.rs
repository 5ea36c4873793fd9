//! Tuning profiles: what `tune apply` sets and `tune audit` recommends.
//!
//! A profile is a TOML file (see `profiles/latency.toml`, built in as
//! `latency`, and `profiles/throughput.toml`, built in as `throughput`).
//! Every section, key and value is checked when it is loaded: a typo is an
//! error naming it, never a setting silently ignored. Loading does not look
//! at the machine; [`Profile::expand`] fills in the CPU lists.

use std::collections::BTreeMap;
use std::fmt;
use std::path::Path;

use serde::Deserialize;

use crate::root::{format_cpu_list, parse_cpu_list};

const LATENCY: &str = include_str!("../profiles/latency.toml");
const THROUGHPUT: &str = include_str!("../profiles/throughput.toml");

/// The names of the built-in profiles.
pub const BUILT_IN: [&str; 2] = ["latency", "throughput"];

/// Why a profile could not be loaded.
#[derive(Debug, thiserror::Error)]
pub enum ProfileError {
    /// Not a built-in name and no such file.
    #[error("no profile {0:?}: use one of latency, throughput, or the path of a TOML profile file")]
    NotFound(String),
    /// The file could not be read.
    #[error("reading profile {path}: {source}")]
    Read {
        /// The file.
        path: String,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Not a regular file, a symbolic link, owned by another user,
    /// writable by group or others, or larger than [`MAX_PROFILE_BYTES`]:
    /// refused before it is read.
    #[error("profile {path}: {why}")]
    Refused {
        /// The file.
        path: String,
        /// Why, with the limit.
        why: String,
    },
    /// Not valid TOML, or a section or key the format does not have.
    #[error("profile {origin}: {message}")]
    Syntax {
        /// The profile name or file.
        origin: String,
        /// What the TOML parser said (it names the key and line).
        message: String,
    },
    /// A value out of range.
    #[error("profile {origin}: {key} = {value:?}: {expected}")]
    Invalid {
        /// The profile name or file.
        origin: String,
        /// The key.
        key: String,
        /// The value given.
        value: String,
        /// What is accepted.
        expected: String,
    },
}

#[derive(Debug, Clone, Deserialize)]
#[serde(untagged)]
enum Entry {
    Bare(String),
    Full(FullEntry),
}

#[derive(Debug, Clone, Deserialize)]
#[serde(deny_unknown_fields)]
struct FullEntry {
    value: String,
    #[serde(default)]
    why: Option<String>,
}

impl Entry {
    fn split(self) -> (String, String) {
        match self {
            Self::Bare(v) => (v, String::new()),
            Self::Full(f) => (f.value, f.why.unwrap_or_default()),
        }
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ProfileFile {
    name: String,
    #[serde(default)]
    description: String,
    #[serde(default)]
    sysctl: BTreeMap<String, Entry>,
    #[serde(default)]
    nic: BTreeMap<String, Entry>,
    #[serde(default)]
    irq: Option<IrqSection>,
    #[serde(default)]
    cpu: Option<CpuSection>,
    #[serde(default)]
    thp: Option<ThpSection>,
    #[serde(default)]
    cmdline: Option<CmdlineSection>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct IrqSection {
    affinity: Entry,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CpuSection {
    governor: Option<Entry>,
    max_cstate_latency_us: Option<Entry>,
    isolate: Option<Entry>,
    stop_irqbalance: Option<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ThpSection {
    enabled: Option<Entry>,
    defrag: Option<Entry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct CmdlineSection {
    params: Vec<String>,
    #[serde(default)]
    why: Option<String>,
}

/// What a profile wants set.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Want {
    /// A sysctl, by dotted name.
    Sysctl(String),
    /// An ethtool setting of every named interface (`feature.gro`, ...).
    Nic(String),
    /// The CPUs the interfaces' queue interrupts run on.
    IrqAffinity,
    /// The cpufreq governor of the chosen CPUs.
    Governor,
    /// C-states slower to leave than this many µs are disabled on the chosen CPUs.
    MaxCstateLatencyUs,
    /// Other tasks are moved off the chosen CPUs (cpusets).
    Isolate,
    /// irqbalance is stopped.
    StopIrqbalance,
    /// `/sys/kernel/mm/transparent_hugepage/enabled`.
    ThpEnabled,
    /// `/sys/kernel/mm/transparent_hugepage/defrag`.
    ThpDefrag,
}

impl fmt::Display for Want {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Self::Sysctl(k) => write!(f, "sysctl {k}"),
            Self::Nic(k) => write!(f, "nic {k}"),
            Self::IrqAffinity => f.write_str("irq affinity"),
            Self::Governor => f.write_str("cpu governor"),
            Self::MaxCstateLatencyUs => f.write_str("cpu max_cstate_latency_us"),
            Self::Isolate => f.write_str("cpu isolate"),
            Self::StopIrqbalance => f.write_str("cpu stop_irqbalance"),
            Self::ThpEnabled => f.write_str("thp enabled"),
            Self::ThpDefrag => f.write_str("thp defrag"),
        }
    }
}

/// Largest profile file read: 1 MiB (the built-in profiles are a few KiB).
/// A larger file, or one that is not a regular file (`--profile /dev/zero`
/// was read until memory ran out), is refused before it is read.
pub const MAX_PROFILE_BYTES: u64 = 1 << 20;

/// The text of a profile file, read under the snapshot's rule
/// ([`crate::trusted::read_trusted`]): a regular file of at most
/// [`MAX_PROFILE_BYTES`], owned by root or you, not writable by group or
/// others, not a symbolic link.
fn read_profile_file(p: &str) -> Result<String, ProfileError> {
    let bytes = crate::trusted::read_trusted(
        Path::new(p),
        MAX_PROFILE_BYTES,
        "MAX_PROFILE_BYTES",
        "a profile is a short TOML file",
    )
    .map_err(|e| match e {
        crate::trusted::TrustError::Io(source) => ProfileError::Read {
            path: p.to_string(),
            source,
        },
        crate::trusted::TrustError::Untrusted(why) => ProfileError::Refused {
            path: p.to_string(),
            why: format!("{why}: a profile tells root what to set; refusing it"),
        },
    })?;
    String::from_utf8(bytes).map_err(|_| ProfileError::Refused {
        path: p.to_string(),
        why: "is not UTF-8 text".into(),
    })
}

/// One setting of a profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Setting {
    /// What is set.
    pub want: Want,
    /// The value, as the kernel shows it (after [`Profile::expand`]).
    pub value: String,
    /// Why, for the reports.
    pub why: String,
}

/// A loaded, checked profile.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Profile {
    /// Its name.
    pub name: String,
    /// What it is for.
    pub description: String,
    /// The settings, in file order by section.
    pub settings: Vec<Setting>,
    /// Kernel command-line parameters it recommends (never applied).
    pub cmdline: Vec<String>,
    /// Why the command line.
    pub cmdline_why: String,
    /// Command-line parameters left out by [`expand`](Self::expand)
    /// because they name the trading CPUs and none were given (`--cpus`):
    /// as written in the profile, e.g. `nohz_full={cpus}`.
    pub cmdline_needs_cpus: Vec<String>,
}

impl Profile {
    /// A built-in profile by name, or a TOML file by path.
    ///
    /// # Errors
    /// See [`ProfileError`].
    pub fn load(name_or_path: &str) -> Result<Self, ProfileError> {
        match name_or_path {
            "latency" => Self::parse("latency", LATENCY),
            "throughput" => Self::parse("throughput", THROUGHPUT),
            p if std::fs::symlink_metadata(p).is_ok() => Self::parse(p, &read_profile_file(p)?),
            p => Err(ProfileError::NotFound(p.to_string())),
        }
    }

    /// Parses and checks a profile; `origin` names it in errors.
    ///
    /// # Errors
    /// [`ProfileError::Syntax`] or [`ProfileError::Invalid`].
    pub fn parse(origin: &str, text: &str) -> Result<Self, ProfileError> {
        let f: ProfileFile = toml::from_str(text).map_err(|e| ProfileError::Syntax {
            origin: origin.to_string(),
            message: e.to_string().trim().replace('\n', " "),
        })?;
        let bad = |key: &str, value: &str, expected: &str| ProfileError::Invalid {
            origin: origin.to_string(),
            key: key.to_string(),
            value: value.to_string(),
            expected: expected.to_string(),
        };
        let mut settings = Vec::new();
        let mut push = |want: Want, e: Entry| -> Result<(), ProfileError> {
            let (value, why) = e.split();
            if value.trim().is_empty() || value.contains('\n') {
                return Err(bad(&want.to_string(), &value, "a value on one line"));
            }
            settings.push(Setting { want, value, why });
            Ok(())
        };
        for (k, e) in f.sysctl {
            let ok = k.contains('.')
                && k.bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b))
                && !k.starts_with('.')
                && !k.contains("..");
            if !ok {
                return Err(bad(
                    &format!("sysctl {k}"),
                    "",
                    "a dotted sysctl name such as net.core.busy_poll",
                ));
            }
            if let Err(why) = crate::scope::sysctl_allowed(&k) {
                return Err(bad(&format!("sysctl {k}"), "", &why));
            }
            push(Want::Sysctl(k), e)?;
        }
        for (k, e) in f.nic {
            if let Err(why) = k.parse::<crate::nic::NicKey>() {
                return Err(bad(&format!("nic {k}"), "", &why.to_string()));
            }
            push(Want::Nic(k), e)?;
        }
        if let Some(irq) = f.irq {
            let (v, _) = irq.affinity.clone().split();
            if v != "{cpus}" && v != "{others}" && parse_cpu_list(&v).is_err() {
                return Err(bad(
                    "irq affinity",
                    &v,
                    "{cpus}, {others} or a CPU list such as 0-1,4",
                ));
            }
            push(Want::IrqAffinity, irq.affinity)?;
        }
        if let Some(cpu) = f.cpu {
            if let Some(e) = cpu.governor {
                push(Want::Governor, e)?;
            }
            if let Some(e) = cpu.max_cstate_latency_us {
                let (v, _) = e.clone().split();
                if v.parse::<u32>().is_err() {
                    return Err(bad(
                        "cpu max_cstate_latency_us",
                        &v,
                        "microseconds, e.g. 10",
                    ));
                }
                push(Want::MaxCstateLatencyUs, e)?;
            }
            for (want, e) in [
                (Want::Isolate, cpu.isolate),
                (Want::StopIrqbalance, cpu.stop_irqbalance),
            ] {
                if let Some(e) = e {
                    let (v, _) = e.clone().split();
                    if v != "on" && v != "off" {
                        return Err(bad(&want.to_string(), &v, "on or off"));
                    }
                    push(want, e)?;
                }
            }
        }
        if let Some(thp) = f.thp {
            if let Some(e) = thp.enabled {
                let (v, _) = e.clone().split();
                if !["always", "madvise", "never"].contains(&v.as_str()) {
                    return Err(bad("thp enabled", &v, "always, madvise or never"));
                }
                push(Want::ThpEnabled, e)?;
            }
            if let Some(e) = thp.defrag {
                let (v, _) = e.clone().split();
                if !["always", "defer", "defer+madvise", "madvise", "never"].contains(&v.as_str()) {
                    return Err(bad(
                        "thp defrag",
                        &v,
                        "always, defer, defer+madvise, madvise or never",
                    ));
                }
                push(Want::ThpDefrag, e)?;
            }
        }
        let (cmdline, cmdline_why) = match f.cmdline {
            Some(c) => {
                for p in &c.params {
                    if p.is_empty() || p.contains(char::is_whitespace) {
                        return Err(bad(
                            "cmdline params",
                            p,
                            "kernel parameters without spaces, e.g. nohz_full={cpus}",
                        ));
                    }
                }
                (c.params, c.why.unwrap_or_default())
            }
            None => (Vec::new(), String::new()),
        };
        Ok(Self {
            name: f.name,
            description: f.description,
            settings,
            cmdline,
            cmdline_why,
            cmdline_needs_cpus: Vec::new(),
        })
    }

    /// Fills in `{cpus}` (the chosen CPUs) and `{others}` (the rest of
    /// `all`) in every value and command-line parameter.
    #[must_use]
    pub fn expand(&self, cpus: &[usize], all: &[usize]) -> Self {
        let chosen = format_cpu_list(cpus);
        let others: Vec<usize> = all.iter().copied().filter(|c| !cpus.contains(c)).collect();
        let others = format_cpu_list(&others);
        let fill = |s: &str| s.replace("{cpus}", &chosen).replace("{others}", &others);
        let mut p = self.clone();
        for s in &mut p.settings {
            s.value = fill(&s.value);
        }
        // Without trading CPUs a parameter naming them would read
        // `nohz_full=`: leave it out, and say it needs --cpus.
        let (needs, ok): (Vec<String>, Vec<String>) = p
            .cmdline
            .iter()
            .cloned()
            .partition(|c| cpus.is_empty() && (c.contains("{cpus}") || c.contains("{others}")));
        p.cmdline = ok.iter().map(|c| fill(c)).collect();
        p.cmdline_needs_cpus = needs;
        p
    }

    /// The value wanted for `want`, if the profile sets it.
    #[must_use]
    pub fn get(&self, want: &Want) -> Option<&Setting> {
        self.settings.iter().find(|s| &s.want == want)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn without_cpus_no_parameter_is_left_with_an_empty_cpu_list() {
        // `tune apply --iface X` without --cpus printed "add nohz_full=" and
        // "isolcpus=managed_irq,domain,".
        struct Nothing;
        impl crate::plan::Access for Nothing {
            fn read(
                &self,
                _: &crate::plan::Target,
            ) -> Result<Option<String>, crate::plan::AccessError> {
                Ok(None)
            }
            fn write(
                &self,
                _: &crate::plan::Target,
                _: &str,
            ) -> Result<(), crate::plan::AccessError> {
                Ok(())
            }
            fn check(&self, _: &crate::plan::Target) -> Result<(), String> {
                Ok(())
            }
            fn dir_id(&self, _: &str) -> Option<crate::scope::DirId> {
                None
            }
        }
        let e = Profile::load("latency").unwrap().expand(&[], &[0, 1]);
        assert!(
            e.cmdline
                .iter()
                .all(|c| !c.ends_with('=') && !c.ends_with(',')),
            "{:?}",
            e.cmdline
        );
        assert!(
            e.cmdline_needs_cpus
                .iter()
                .any(|c| c.starts_with("nohz_full=")),
            "{e:?}"
        );
        let plan = crate::plan::plan(
            &e,
            &crate::plan::PlanInput {
                all_cpus: vec![0, 1],
                ..Default::default()
            },
            &Nothing,
        );
        let skipped = plan.unwrap().skipped;
        assert!(
            skipped
                .iter()
                .any(|s| s.wanted.starts_with("nohz_full=") && s.reason.contains("--cpus")),
            "{skipped:?}"
        );
    }

    #[test]
    fn built_in_profiles_load() {
        for name in BUILT_IN {
            let p = Profile::load(name).unwrap();
            assert_eq!(p.name, name);
            assert!(p.settings.len() > 5);
            assert!(
                p.settings.iter().all(|s| !s.why.is_empty()),
                "{name}: every setting says why"
            );
        }
        let p = Profile::load("latency").unwrap();
        assert_eq!(
            p.get(&Want::Sysctl("net.core.busy_poll".into()))
                .unwrap()
                .value,
            "50"
        );
        let e = p.expand(&[2, 3], &[0, 1, 2, 3]);
        assert_eq!(e.get(&Want::IrqAffinity).unwrap().value, "2-3");
        assert!(e.cmdline.contains(&"nohz_full=2-3".to_string()));
        assert!(e.cmdline.contains(&"irqaffinity=0-1".to_string()));
    }

    fn err(text: &str) -> String {
        Profile::parse("test.toml", text).unwrap_err().to_string()
    }

    #[test]
    fn every_key_is_checked() {
        assert!(
            err("name = \"x\"\n[sysctls]\n").contains("sysctls"),
            "unknown section"
        );
        assert!(err("name = \"x\"\n[cpu]\ngovernour = \"performance\"\n").contains("governour"));
        assert!(
            err("name = \"x\"\n[nic]\n\"feature.gro\" = { value = \"off\", whyy = \"\" }\n")
                .contains("test.toml")
        );
        assert!(
            err("name = \"x\"\n[nic]\n\"coalesce.rx-usec\" = \"0\"\n").contains("coalesce.rx-usec")
        );
        assert!(err("name = \"x\"\n[sysctl]\nbusy_poll = \"50\"\n").contains("dotted sysctl name"));
        let e = err("name = \"x\"\n[sysctl]\n\"kernel.core_pattern\" = \"|/tmp/x\"\n");
        assert!(
            e.contains("kernel.core_pattern") && e.contains("outside"),
            "{e}"
        );
        assert!(err("name = \"x\"\n[cpu]\nisolate = \"yes\"\n").contains("on or off"));
        assert!(err("name = \"x\"\n[thp]\nenabled = \"sometimes\"\n").contains("madvise"));
        assert!(err("name = \"x\"\n[irq]\naffinity = \"all\"\n").contains("CPU list"));
        assert!(
            err("name = \"x\"\n[sysctl]\n\"net.core.busy_poll\" = \"\"\n").contains("one line")
        );
        assert!(err("name = \"x\"\n[cmdline]\nparams = [\"a b\"]\n").contains("without spaces"));
        assert!(err("description = \"no name\"\n").contains("name"));
        assert!(matches!(
            Profile::load("/nonexistent.toml"),
            Err(ProfileError::NotFound(_))
        ));
    }

    #[test]
    fn a_file_profile_loads_with_bare_values() {
        let p = Profile::parse(
            "mine.toml",
            "name = \"mine\"\n[sysctl]\n\"net.core.busy_read\" = \"25\"\n[nic]\n\"feature.gro\" = \"on\"\n",
        )
        .unwrap();
        assert_eq!(p.settings.len(), 2);
        assert_eq!(p.settings[0].value, "25");
        assert_eq!(p.settings[0].why, "");
    }

    /// A profile file is read under the snapshot's rule: owned by root or
    /// the invoking user, not writable by group or others, not a symbolic
    /// link; a good one loads.
    #[test]
    fn a_profile_file_root_must_not_trust_is_refused() {
        use std::os::unix::fs::PermissionsExt;
        let dir = std::env::temp_dir().join(format!("hftnet-profile-trust-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        struct Clean(std::path::PathBuf);
        impl Drop for Clean {
            fn drop(&mut self) {
                let _ = std::fs::remove_dir_all(&self.0);
            }
        }
        let _clean = Clean(dir.clone());
        let text = "name = \"mine\"\n[sysctl]\n\"net.core.busy_read\" = \"25\"\n";
        let file = |name: &str, mode: u32| {
            let p = dir.join(name);
            std::fs::write(&p, text).unwrap();
            std::fs::set_permissions(&p, std::fs::Permissions::from_mode(mode)).unwrap();
            p.display().to_string()
        };
        let good = file("good.toml", 0o644);
        assert_eq!(Profile::load(&good).unwrap().name, "mine");
        let refused = |p: &str| match Profile::load(p) {
            Err(ProfileError::Refused { why, .. }) => why,
            other => panic!("{p}: {other:?}"),
        };
        let why = refused(&file("group.toml", 0o664));
        assert!(
            why.contains("written by others") && why.contains("664"),
            "{why}"
        );
        let why = refused(&file("world.toml", 0o646));
        assert!(why.contains("written by others"), "{why}");
        let link = dir.join("link.toml");
        std::os::unix::fs::symlink(&good, &link).unwrap();
        let why = refused(&link.display().to_string());
        assert!(why.contains("symbolic link"), "{why}");
        if hftnet_sys::proc::euid() == 0 {
            let other = file("other.toml", 0o644);
            std::os::unix::fs::chown(&other, Some(65534), None).unwrap();
            let why = refused(&other);
            assert!(why.contains("uid 65534"), "{why}");
        }
    }
}
