//! `hftnet jitter`: OS jitter per CPU (see `hftnet_tune::jitter` for the
//! method and its limits).

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use hftnet_bench::clock::Clock;
use hftnet_bench::env::Environment;
use hftnet_sys::sched::cpu_list_string;
use hftnet_tune::jitter::{JitterConfig, run_jitter};
use serde_json::{Value, json};

use crate::util::{CpuList, Report, parse_cpus, parse_duration, stop_on_signals};

#[derive(Debug, Args)]
pub struct JitterArgs {
    /// CPUs to measure, one spinning thread each, e.g. 0-3,5 (default: every
    /// CPU this process may run on).
    #[arg(long, value_name = "LIST", value_parser = parse_cpus)]
    cpus: Option<CpuList>,
    /// How long to measure (10ms to 1h).
    #[arg(long, value_name = "D", default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// A gap between two clock reads longer than this (ns) is an interruption.
    #[arg(long, value_name = "NS", default_value_t = 1000)]
    threshold: u64,
    /// Print one JSON object on stdout instead of `# key: value` lines.
    #[arg(long)]
    json: bool,
}

pub fn jitter(a: JitterArgs) -> Result<ExitCode> {
    let cpus = match a.cpus {
        Some(CpuList(c)) => c,
        None => hftnet_sys::sched::allowed_cpus().context("reading the allowed CPUs")?,
    };
    let cfg = JitterConfig {
        cpus,
        duration: a.duration,
        threshold_ns: a.threshold,
    };
    cfg.validate()?;
    let stop = stop_on_signals()?;
    let clock = Clock::new();
    if !a.json {
        eprintln!(
            "hftnet jitter: spinning on CPU {} for {:?} (threshold {} ns); Ctrl-C stops early",
            cpu_list_string(&cfg.cpus),
            cfg.duration,
            cfg.threshold_ns
        );
    }
    let rep = run_jitter(&cfg, clock, &stop)?;

    let mut out = Report::default();
    out.put("command", "jitter")
        .put("cpus", cpu_list_string(&cfg.cpus))
        .put("duration_s", cfg.duration.as_secs_f64())
        .put("threshold_ns", rep.threshold_ns)
        .put("clock", rep.clock.as_str())
        .put("tsc_hz", rep.tsc_hz)
        .put("clock_note", rep.clock_note)
        .put("stopped_early", rep.stopped_early);
    if a.json {
        out.put("per_cpu", serde_json::to_value(&rep.cpus)?)
            .put("warnings", rep.warnings.clone());
    } else {
        for c in &rep.cpus {
            // The fields in order, without `cpu` (it is in the key) and with
            // the ratios rounded for reading.
            let Value::Object(fields) = serde_json::to_value(c)? else {
                unreachable!("a struct serializes to an object");
            };
            let v: serde_json::Map<String, Value> = fields
                .into_iter()
                .filter(|(k, _)| k != "cpu")
                .map(|(k, v)| match v.as_f64() {
                    Some(x) if k == "rate_per_s" || k == "lost_pct" => {
                        (k, json!((x * 1e4).round() / 1e4))
                    }
                    _ => (k, v),
                })
                .collect();
            out.put(&format!("cpu{}", c.cpu), v);
        }
        for (i, w) in rep.warnings.iter().enumerate() {
            out.put(&format!("warning_{}", i + 1), w.as_str());
        }
    }
    out.put("environment", serde_json::to_value(Environment::capture())?);
    out.print(a.json);
    Ok(ExitCode::SUCCESS)
}
