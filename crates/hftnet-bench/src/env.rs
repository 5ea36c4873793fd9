//! The environment a measurement ran in: kernel, CPU, clocksource, tick rate,
//! CPU isolation and host name — recorded with every report (DESIGN.md,
//! "Measuring honestly") and printed as `# key: value` lines.
//!
//! Layer: `hftnet-bench`, called once per run, before measuring. It only reads
//! files under `/proc`, `/sys` and `/boot` (and runs `gzip -dc` on
//! `/proc/config.gz` when the kernel config is only available there).
//!
//! Invariants: capturing never panics and never fails: anything that cannot
//! be read becomes `"unknown"`, and a kernel parameter that is simply absent
//! (no `isolcpus=` on the command line) becomes `"none"`, so a reader can tell
//! "not set" from "could not tell". It must never guess: `HZ` is taken from the
//! kernel config only, never from `CLK_TCK` (that is `USER_HZ`, always 100).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use serde::Serialize;

/// Value of a field that could not be read.
pub const UNKNOWN: &str = "unknown";
/// Value of a kernel command-line parameter that is not set.
pub const NONE: &str = "none";

/// The machine and kernel a run happened on. Every field is text, `"unknown"`
/// when it could not be read.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Environment {
    /// Host name (`uname -n`, from `/proc/sys/kernel/hostname`).
    pub hostname: String,
    /// Kernel release (`uname -r`, from `/proc/sys/kernel/osrelease`).
    pub kernel: String,
    /// CPU model, the first `model name` of `/proc/cpuinfo`.
    pub cpu_model: String,
    /// Number of online CPUs (`/sys/devices/system/cpu/online`).
    pub cpus: String,
    /// CPUs this process may run on (its affinity mask), e.g. `0-1`.
    pub cpus_allowed: String,
    /// Current clocksource, e.g. `tsc` or `kvm-clock`.
    pub clocksource: String,
    /// The scheduler tick rate, `CONFIG_HZ` of the running kernel's config.
    pub hz: String,
    /// `isolcpus=` from the kernel command line, `"none"` if not set.
    pub isolcpus: String,
    /// `nohz_full=` from the kernel command line, `"none"` if not set.
    pub nohz_full: String,
}

impl Environment {
    /// Reads the environment of this machine.
    #[must_use]
    pub fn capture() -> Self {
        let mut env = Self::capture_from(Path::new("/"));
        env.cpus_allowed = hftnet_sys::sched::allowed_cpus()
            .ok()
            .filter(|c| !c.is_empty())
            .map_or_else(
                || UNKNOWN.to_owned(),
                |c| hftnet_sys::sched::cpu_list_string(&c),
            );
        env
    }

    /// Reads the environment from files under `root` instead of `/` (for
    /// tests and for inspecting a saved snapshot of `/proc` and `/sys`).
    /// `cpus_allowed` is not a file and is left `"unknown"`.
    #[must_use]
    pub fn capture_from(root: &Path) -> Self {
        let at = |p: &str| root.join(p.trim_start_matches('/'));
        let kernel = read_trimmed(&at("/proc/sys/kernel/osrelease"));
        let cmdline = fs::read_to_string(at("/proc/cmdline")).ok();
        let cmd_param = |name: &str| match &cmdline {
            None => UNKNOWN.to_owned(),
            Some(c) => cmdline_param(c, name).unwrap_or_else(|| NONE.to_owned()),
        };
        Self {
            hostname: read_trimmed(&at("/proc/sys/kernel/hostname")),
            cpu_model: fs::read_to_string(at("/proc/cpuinfo"))
                .ok()
                .and_then(|s| cpuinfo_model(&s))
                .unwrap_or_else(|| UNKNOWN.to_owned()),
            cpus: fs::read_to_string(at("/sys/devices/system/cpu/online"))
                .ok()
                .and_then(|s| count_cpu_list(s.trim()))
                .map_or_else(|| UNKNOWN.to_owned(), |n| n.to_string()),
            cpus_allowed: UNKNOWN.to_owned(),
            clocksource: read_trimmed(&at(
                "/sys/devices/system/clocksource/clocksource0/current_clocksource",
            )),
            hz: kernel_hz(root, &kernel).unwrap_or_else(|| UNKNOWN.to_owned()),
            isolcpus: cmd_param("isolcpus"),
            nohz_full: cmd_param("nohz_full"),
            kernel,
        }
    }

    /// The fields as `(key, value)` pairs in a fixed order, for printing as
    /// `# key: value` lines.
    #[must_use]
    pub fn lines(&self) -> Vec<(String, String)> {
        [
            ("hostname", &self.hostname),
            ("kernel", &self.kernel),
            ("cpu_model", &self.cpu_model),
            ("cpus", &self.cpus),
            ("cpus_allowed", &self.cpus_allowed),
            ("clocksource", &self.clocksource),
            ("hz", &self.hz),
            ("isolcpus", &self.isolcpus),
            ("nohz_full", &self.nohz_full),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v.clone()))
        .collect()
    }
}

fn read_trimmed(path: &Path) -> String {
    fs::read_to_string(path)
        .ok()
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| UNKNOWN.to_owned())
}

fn cpuinfo_model(cpuinfo: &str) -> Option<String> {
    cpuinfo
        .lines()
        .filter_map(|l| l.split_once(':'))
        .find(|(k, _)| k.trim() == "model name")
        .map(|(_, v)| v.trim().to_owned())
        .filter(|v| !v.is_empty())
}

/// Counts the CPUs in a kernel CPU list such as `0-3,6,8-9` (parsed by
/// [`hftnet_sys::cpus::parse_cpu_list`]); `None` for an empty or malformed list.
fn count_cpu_list(list: &str) -> Option<usize> {
    hftnet_sys::cpus::parse_cpu_list(list)
        .ok()
        .map(|cpus| cpus.len())
        .filter(|&n| n > 0)
}

/// The value of `name=` on the kernel command line (the last one wins, as in
/// the kernel); `Some("")` for a bare `name`.
fn cmdline_param(cmdline: &str, name: &str) -> Option<String> {
    cmdline
        .split_whitespace()
        .take_while(|w| *w != "--") // after "--" the words belong to init
        .filter_map(|w| match w.split_once('=') {
            Some((k, v)) if k == name => Some(v.to_owned()),
            None if w == name => Some(String::new()),
            _ => None,
        })
        .last()
}

/// `CONFIG_HZ` from `/boot/config-RELEASE`, else from `/proc/config.gz`.
fn kernel_hz(root: &Path, release: &str) -> Option<String> {
    let boot: PathBuf = root.join("boot").join(format!("config-{release}"));
    if release != UNKNOWN
        && let Ok(text) = fs::read_to_string(&boot)
        && let Some(hz) = config_hz(&text)
    {
        return Some(hz);
    }
    let gz = root.join("proc/config.gz");
    if !gz.exists() {
        return None;
    }
    let out = Command::new("gzip")
        .arg("-dc")
        .arg(&gz)
        .stdin(Stdio::null())
        .stderr(Stdio::null())
        .output()
        .ok()
        .filter(|o| o.status.success())?;
    config_hz(&String::from_utf8_lossy(&out.stdout))
}

fn config_hz(config: &str) -> Option<String> {
    config
        .lines()
        .find_map(|l| l.strip_prefix("CONFIG_HZ="))
        .map(str::trim)
        .filter(|v| !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit()))
        .map(str::to_owned)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_on_this_machine() {
        let env = Environment::capture();
        let uname_r = Command::new("uname").arg("-r").output().unwrap();
        assert_eq!(
            env.kernel,
            String::from_utf8(uname_r.stdout).unwrap().trim()
        );
        let uname_n = Command::new("uname").arg("-n").output().unwrap();
        assert_eq!(
            env.hostname,
            String::from_utf8(uname_n.stdout).unwrap().trim()
        );
        assert_ne!(env.cpu_model, UNKNOWN);
        let n: usize = env.cpus.parse().unwrap();
        assert!(n >= 1);
        assert_ne!(env.cpus_allowed, UNKNOWN);
        assert_ne!(env.clocksource, UNKNOWN);
        assert_ne!(env.isolcpus, UNKNOWN); // /proc/cmdline is always readable
        // HZ: either a number or an honest "unknown", never USER_HZ guessed.
        assert!(
            env.hz == UNKNOWN || env.hz.parse::<u32>().is_ok(),
            "{}",
            env.hz
        );
        eprintln!("{env:#?}");
    }

    #[test]
    fn missing_files_become_unknown() {
        let env = Environment::capture_from(Path::new("/nonexistent-hftnet-env-root"));
        for (k, v) in env.lines() {
            assert_eq!(v, UNKNOWN, "{k}");
        }
    }

    #[test]
    fn lines_in_fixed_order() {
        let env = Environment::capture();
        let keys: Vec<String> = env.lines().into_iter().map(|(k, _)| k).collect();
        assert_eq!(
            keys,
            [
                "hostname",
                "kernel",
                "cpu_model",
                "cpus",
                "cpus_allowed",
                "clocksource",
                "hz",
                "isolcpus",
                "nohz_full"
            ]
        );
        let json = serde_json::to_value(&env).unwrap();
        assert_eq!(json["kernel"], env.kernel);
    }

    #[test]
    fn parsers() {
        assert_eq!(count_cpu_list("0-3,6,8-9"), Some(7));
        assert_eq!(count_cpu_list("0"), Some(1));
        assert_eq!(count_cpu_list(""), None);
        assert_eq!(count_cpu_list("x"), None);
        let cmd = "ro quiet isolcpus=1-3 nohz_full=2,3 isolcpus=domain,1 -- isolcpus=9";
        assert_eq!(cmdline_param(cmd, "isolcpus").as_deref(), Some("domain,1"));
        assert_eq!(cmdline_param(cmd, "nohz_full").as_deref(), Some("2,3"));
        assert_eq!(cmdline_param(cmd, "quiet").as_deref(), Some(""));
        assert_eq!(cmdline_param(cmd, "rcu_nocbs"), None);
        assert_eq!(
            config_hz("# CONFIG_HZ_100 is not set\nCONFIG_HZ_250=y\nCONFIG_HZ=250\n").as_deref(),
            Some("250")
        );
        assert_eq!(config_hz("CONFIG_HZ_1000=y\n"), None);
        assert_eq!(
            cpuinfo_model("processor\t: 0\nmodel name\t: AMD EPYC 7B13\n").as_deref(),
            Some("AMD EPYC 7B13")
        );
    }
}
