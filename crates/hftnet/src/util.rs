//! Small helpers of the command line: durations, sizes, process placement.

use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result, bail};

/// Parses `500ms`, `10s`, `2m`, `1.5s`, `250us`, `100ns` (the URI
/// parameters' parser, [`hftnet_io::uri::parse_duration`]); on the command
/// line a bare number is seconds.
pub fn parse_duration(s: &str) -> Result<Duration, String> {
    let t = s.trim();
    let bare = !t.is_empty() && t.chars().all(|c| c.is_ascii_digit() || c == '.');
    let with_unit = if bare { format!("{t}s") } else { t.to_string() };
    let d = hftnet_io::uri::parse_duration(&with_unit).ok_or_else(|| {
        format!("{s:?} is not a duration such as 500ms, 10s or 2m (units: ns, us, ms, s, m, h)")
    })?;
    if d > Duration::from_secs(7 * 86_400) {
        return Err(format!("{s:?} is out of range (0 to 7 days)"));
    }
    Ok(d)
}

/// Parses a byte size (`64`, `4K`, `1M`).
pub fn parse_size(s: &str) -> Result<usize, String> {
    hftnet_io::uri::parse_size(s)
        .map(|v| v as usize)
        .ok_or_else(|| format!("{s:?} is not a size such as 64, 4K or 1M"))
}

/// Longest interface name: the kernel's `IFNAMSIZ` (16) less its NUL.
pub const MAX_IFACE_NAME: usize = 15;

/// Parses an `--iface` value: 1 to [`MAX_IFACE_NAME`] bytes, none of them
/// `/`, `:`, a space or a control character (what the kernel refuses in a
/// name), so a bad name is refused before anything reads the host.
pub fn parse_iface(s: &str) -> Result<String, String> {
    if s.is_empty() || s.len() > MAX_IFACE_NAME {
        return Err(format!(
            "{s:?} is not an interface name: 1 to {MAX_IFACE_NAME} characters (see `ip link`)"
        ));
    }
    if s == "."
        || s == ".."
        || s.bytes()
            .any(|b| b == b'/' || b == b':' || b <= b' ' || b == 0x7f)
    {
        return Err(format!(
            "{s:?} is not an interface name: no '/', ':', spaces or control characters (see `ip link`)"
        ));
    }
    Ok(s.to_string())
}

/// A parsed `--cpus` value (a newtype: clap gives `Option<Vec<_>>` another
/// meaning).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CpuList(pub Vec<usize>);

/// Parses a `--cpus` value: a kernel CPU list such as `0-3,5` (read by
/// [`hftnet_sys::cpus::parse_cpu_list`]), ascending without repeats. An empty
/// list is refused: every command taking `--cpus` needs at least one CPU.
pub fn parse_cpus(s: &str) -> Result<CpuList, String> {
    let cpus = hftnet_sys::cpus::parse_cpu_list(s).map_err(|e| e.to_string())?;
    if cpus.is_empty() {
        return Err("empty CPU list: give CPUs such as 0-3,5".into());
    }
    Ok(CpuList(cpus))
}

/// Pins the calling thread, makes it SCHED_FIFO and locks memory, as asked.
/// Returns `# key: value` lines saying what was done.
pub fn place(cpu: Option<usize>, fifo: Option<i32>, mlock: bool) -> Result<Vec<(String, String)>> {
    let mut lines = Vec::new();
    if let Some(c) = cpu {
        hftnet_sys::sched::pin_thread_to_cpu(c).with_context(|| format!("pinning to CPU {c}"))?;
        lines.push(("cpu".into(), c.to_string()));
    } else {
        lines.push(("cpu".into(), "not pinned".into()));
    }
    if let Some(p) = fifo {
        hftnet_sys::sched::set_fifo(p)
            .with_context(|| format!("switching to SCHED_FIFO priority {p}"))?;
        lines.push(("sched".into(), format!("SCHED_FIFO {p}")));
    }
    if mlock {
        hftnet_sys::sched::mlockall_current_and_future().context("locking memory")?;
        lines.push(("mlockall".into(), "yes".into()));
    }
    Ok(lines)
}

/// The CPU to pin to: the command line wins over the URI's `cpu=`; both given and different is an error.
pub fn choose_cpu(flag: Option<usize>, uri: Option<usize>) -> Result<Option<usize>> {
    match (flag, uri) {
        (Some(a), Some(b)) if a != b => {
            bail!("--cpu {a} contradicts cpu={b} in the URI; give one of them")
        }
        (a, b) => Ok(a.or(b)),
    }
}

/// A flag that SIGINT or SIGTERM sets, so a run ends and still prints what it counted.
pub fn stop_on_signals() -> Result<Arc<AtomicBool>> {
    let stop = Arc::new(AtomicBool::new(false));
    // SIGHUP too: a closed terminal or SSH session ends the run as Ctrl-C
    // does, with its clean-up (a ladder's host changes reverted).
    for sig in [
        signal_hook::consts::SIGINT,
        signal_hook::consts::SIGTERM,
        signal_hook::consts::SIGHUP,
    ] {
        signal_hook::flag::register(sig, stop.clone()).context("installing the signal handler")?;
    }
    Ok(stop)
}

/// Results of a command, printed as `# key: value` lines or one JSON
/// object. Nested objects print as `outer.inner: value` lines.
#[derive(Debug, Default)]
pub struct Report(serde_json::Map<String, serde_json::Value>);

impl Report {
    /// Adds (or replaces) one entry.
    pub fn put(&mut self, key: &str, value: impl Into<serde_json::Value>) -> &mut Self {
        self.0.insert(key.to_string(), value.into());
        self
    }

    /// Prints the report on stdout.
    pub fn print(&self, json: bool) {
        if json {
            println!("{}", serde_json::Value::Object(self.0.clone()));
        } else {
            let mut lines = Vec::new();
            flatten("", &self.0, &mut lines);
            for (k, v) in lines {
                println!("# {k}: {v}");
            }
        }
    }
}

fn flatten(
    prefix: &str,
    map: &serde_json::Map<String, serde_json::Value>,
    out: &mut Vec<(String, String)>,
) {
    for (k, v) in map {
        let key = if prefix.is_empty() {
            k.clone()
        } else {
            format!("{prefix}.{k}")
        };
        match v {
            serde_json::Value::Object(m) => flatten(&key, m, out),
            serde_json::Value::String(s) => out.push((key, s.clone())),
            serde_json::Value::Null => out.push((key, "-".into())),
            other => out.push((key, other.to_string())),
        }
    }
}

/// Parses a transport URI for a command whose other end is another
/// process, refusing a scheme whose two ends must share one process
/// (`mem://`), with what to do instead.
pub fn endpoint_for_command(uri: &str, command: &str) -> Result<hftnet_io::Endpoint> {
    let ep = hftnet_io::Endpoint::parse(uri)?;
    if hftnet_io::backend::placement(ep.scheme()) == Some(hftnet_io::Placement::InProcess) {
        bail!(
            "{}:// connects two ends inside one process, and `hftnet {command}` runs one end \
             only: measure it with `hftnet lab --transports {}` (both ends in the lab's \
             process), or open both ends from the library",
            ep.scheme(),
            ep.scheme()
        );
    }
    Ok(ep)
}

/// The version of this build (the workspace's).
pub const VERSION: &str = env!("CARGO_PKG_VERSION");

/// The git commit this build was made from (`build.rs`; `HFTNET_GIT_COMMIT`
/// given to the build wins), or `unknown` without git.
pub const COMMIT: &str = match option_env!("HFTNET_GIT_COMMIT") {
    Some(c) => c,
    None => "unknown",
};

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations() {
        assert_eq!(parse_duration("500ms").unwrap(), Duration::from_millis(500));
        assert_eq!(parse_duration("10").unwrap(), Duration::from_secs(10));
        assert_eq!(parse_duration("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse_duration("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse_duration("250us").unwrap(), Duration::from_micros(250));
        assert!(
            parse_duration("ten")
                .unwrap_err()
                .contains("not a duration")
        );
        assert!(parse_duration("5 parsecs").is_err());
        assert!(parse_duration("99999h").is_err());
    }

    #[test]
    fn cpu_lists() {
        assert_eq!(parse_cpus("0-3,5").unwrap(), CpuList(vec![0, 1, 2, 3, 5]));
        assert_eq!(parse_cpus(" 7 , 1-2,2 ").unwrap(), CpuList(vec![1, 2, 7]));
        for empty in ["", "  ", "(null)"] {
            assert!(
                parse_cpus(empty).unwrap_err().contains("empty CPU list"),
                "{empty:?}"
            );
        }
        // The error names the list and the bad part.
        let e = parse_cpus("2-x").unwrap_err();
        assert_eq!(e, "bad CPU list `2-x`: `2-x` is not a CPU number");
        assert!(parse_cpus("1,,2").unwrap_err().contains("stray comma"));
        assert!(parse_cpus("9999").unwrap_err().contains("9999"));
    }

    #[test]
    fn report_flattens_nested_objects() {
        let mut r = Report::default();
        r.put("a", 1)
            .put("b", serde_json::json!({"c": "x", "d": null}));
        let mut lines = Vec::new();
        flatten("", &r.0, &mut lines);
        assert_eq!(
            lines,
            vec![
                ("a".to_string(), "1".to_string()),
                ("b.c".to_string(), "x".to_string()),
                ("b.d".to_string(), "-".to_string())
            ]
        );
    }

    #[test]
    fn cpu_choice() {
        assert_eq!(choose_cpu(Some(1), None).unwrap(), Some(1));
        assert_eq!(choose_cpu(None, Some(0)).unwrap(), Some(0));
        assert!(choose_cpu(Some(1), Some(0)).is_err());
    }
}
