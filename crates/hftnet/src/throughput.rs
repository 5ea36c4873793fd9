//! `hftnet blast` and `hftnet sink`: throughput over any transport URI.
//!
//! `blast` sends sequence-numbered probes as fast as it can or at `--rate`,
//! for `--duration` or `--count`; `sink` receives and reports packets and
//! bytes per second, drops seen through sequence gaps, reordering and
//! duplicates. Both print `# key: value` lines (configuration first, results
//! last) or one JSON object with `--json`. With `batch=N` in a UDP URI each
//! burst is one `sendmmsg` / `recvmmsg` of up to N datagrams.

use std::io::Write;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use hftnet_bench::clock::Clock;
use hftnet_bench::env::Environment;
use hftnet_bench::report::comment_lines;
use hftnet_bench::throughput::{BlastConfig, SinkConfig, StoppedBy, run_blast, run_sink};
use hftnet_io::{Role, Transport, dispatch};
use serde_json::Value;

use crate::util::{
    Report, choose_cpu, endpoint_for_command, parse_duration, parse_size, place, stop_on_signals,
};

/// Exit code when nothing could be sent or nothing arrived.
const EXIT_NOTHING: u8 = 3;

/// Messages per burst call when the URI has no `batch=` above 1.
const DEFAULT_BURST: usize = 32;

#[derive(Debug, Args)]
pub struct BlastArgs {
    /// Transport URI to send to, e.g. udp://198.18.0.2:9000?batch=32
    uri: String,
    /// Message size in bytes (at least 20: the probe header).
    #[arg(long, default_value = "64", value_parser = parse_size)]
    size: usize,
    /// Send for this long (e.g. 10s); with --count, whichever ends first.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Send this many messages, then stop.
    #[arg(long)]
    count: Option<u64>,
    /// Send at this fixed rate (messages/s) on a timetable; default as fast as possible.
    #[arg(long)]
    rate: Option<u64>,
    /// Messages per send call (default: the URI's batch=, or 32 with batch=1).
    #[arg(long)]
    burst: Option<usize>,
    /// Pin the sending thread to this CPU.
    #[arg(long)]
    cpu: Option<usize>,
    /// Print one JSON object on stdout instead of `# key: value` lines.
    #[arg(long)]
    json: bool,
}

#[derive(Debug, Args)]
pub struct SinkArgs {
    /// Transport URI to receive on, e.g. udp://198.18.0.2:9000?batch=32
    uri: String,
    /// Receive for this long at most.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    duration: Duration,
    /// Stop when nothing arrived for this long after the first message (0: never).
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    idle: Duration,
    /// Stop after this many messages.
    #[arg(long)]
    count: Option<u64>,
    /// Messages per receive call (default: the URI's batch=, or 32 with batch=1).
    #[arg(long)]
    burst: Option<usize>,
    /// Largest message received whole; larger ones are counted as truncated
    /// (default: the largest the transport carries, 65507 for UDP).
    #[arg(long, value_parser = parse_size)]
    max_size: Option<usize>,
    /// Pin the receiving thread to this CPU.
    #[arg(long)]
    cpu: Option<usize>,
    /// Print one JSON object on stdout instead of `# key: value` lines.
    #[arg(long)]
    json: bool,
}

fn default_burst(batch: usize) -> usize {
    if batch > 1 { batch } else { DEFAULT_BURST }
}

/// A rate or size, rounded for reading.
fn round(x: f64) -> Value {
    serde_json::json!(x.round() as u64)
}

/// Seconds with microsecond precision.
fn secs(x: f64) -> Value {
    serde_json::json!((x * 1e6).round() / 1e6)
}

/// Puts every field of a serialisable report into `out`, rounding rates.
fn put_fields(out: &mut Report, v: Value) {
    let Value::Object(fields) = v else {
        unreachable!("a report struct serializes to an object");
    };
    for (k, v) in fields {
        let v = match (k.as_str(), v.as_f64()) {
            ("pps" | "bytes_per_s", Some(x)) => round(x),
            ("elapsed_s" | "active_s", Some(x)) => secs(x),
            _ => v,
        };
        out.put(&k, v);
    }
}

pub fn blast(a: BlastArgs) -> Result<ExitCode> {
    let ep = endpoint_for_command(&a.uri, "blast")?;
    let batch = ep.burst();
    let cfg = BlastConfig {
        size: a.size,
        duration: a.duration,
        count: a.count,
        rate: a.rate,
        burst: a.burst.unwrap_or_else(|| default_burst(batch)),
    };
    cfg.validate(ep.max_message())?;
    let cpu = choose_cpu(a.cpu, ep.cpu())?;
    let placement = place(cpu, None, false)?;
    let clock = Clock::new();
    let mut t = ep
        .open(Role::Client)
        .with_context(|| format!("opening {}", a.uri))?;
    if !a.json {
        let mut head: Vec<(String, String)> = vec![
            ("command".into(), "blast".into()),
            ("uri".into(), a.uri.clone()),
            ("message_bytes".into(), cfg.size.to_string()),
            ("duration".into(), format!("{:?}", cfg.duration)),
            (
                "count".into(),
                cfg.count.map_or("-".into(), |c| c.to_string()),
            ),
            (
                "rate_pps".into(),
                cfg.rate
                    .map_or("as fast as possible".into(), |r| r.to_string()),
            ),
            ("batch".into(), batch.to_string()),
            ("burst".into(), cfg.burst.to_string()),
            ("clock".into(), clock.kind().to_string()),
        ];
        head.extend(placement);
        head.extend(t.capabilities().lines());
        head.extend(Environment::capture().lines());
        print!("{}", comment_lines(&head));
        std::io::stdout().flush()?;
    }
    let stop = stop_on_signals()?;
    let rep = dispatch!(&mut t, inner => run_blast(inner, &cfg, clock, &stop))?;
    let mut out = Report::default();
    if a.json {
        out.put("command", "blast")
            .put("uri", a.uri.as_str())
            .put("transport", ep.scheme())
            .put("batch", batch)
            .put("clock", clock.kind().to_string())
            .put("cpu", cpu);
    }
    put_fields(&mut out, serde_json::to_value(&rep)?);
    if a.json {
        out.put("capabilities", serde_json::to_value(t.capabilities())?)
            .put("environment", serde_json::to_value(Environment::capture())?);
    }
    out.print(a.json);
    if !rep.flushed {
        eprintln!(
            "hftnet blast: some messages counted sent were still queued in the transmit ring \
             at the end (the device did not take them within 1 s); they never left"
        );
    }
    if rep.sent == 0 {
        eprintln!(
            "hftnet blast: nothing was sent{}",
            rep.first_error
                .as_deref()
                .map_or(String::new(), |e| format!(": {e}"))
        );
        return Ok(ExitCode::from(EXIT_NOTHING));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn sink(a: SinkArgs) -> Result<ExitCode> {
    let ep = endpoint_for_command(&a.uri, "sink")?;
    let batch = ep.burst();
    let cfg = SinkConfig {
        duration: a.duration,
        idle: (!a.idle.is_zero()).then_some(a.idle),
        count: a.count,
        burst: a.burst.unwrap_or_else(|| default_burst(batch)),
        slot: a.max_size.unwrap_or_else(|| ep.max_message()),
        ..SinkConfig::default()
    };
    cfg.validate(ep.max_message())?;
    let cpu = choose_cpu(a.cpu, ep.cpu())?;
    let placement = place(cpu, None, false)?;
    let mut t = ep
        .open(Role::Server)
        .with_context(|| format!("opening {}", a.uri))?;
    let caps = t.capabilities();
    if a.json {
        // Scripts wait for this line before they start sending.
        let local = caps.local.map_or("-".into(), |l| l.to_string());
        eprintln!("hftnet sink: receiving on {local}");
    } else {
        let mut head: Vec<(String, String)> = vec![
            ("command".into(), "sink".into()),
            ("uri".into(), a.uri.clone()),
            ("duration".into(), format!("{:?}", cfg.duration)),
            (
                "idle".into(),
                cfg.idle.map_or("never".into(), |i| format!("{i:?}")),
            ),
            (
                "count".into(),
                cfg.count.map_or("-".into(), |c| c.to_string()),
            ),
            ("batch".into(), batch.to_string()),
            ("burst".into(), cfg.burst.to_string()),
            ("max_size".into(), cfg.slot.to_string()),
        ];
        head.extend(placement);
        head.extend(caps.lines());
        head.extend(Environment::capture().lines());
        print!("{}", comment_lines(&head));
    }
    std::io::stdout().flush()?;
    let stop = stop_on_signals()?;
    let rep = dispatch!(&mut t, inner => run_sink(inner, &cfg, &stop))?;
    let mut out = Report::default();
    if a.json {
        out.put("command", "sink")
            .put("uri", a.uri.as_str())
            .put("transport", ep.scheme())
            .put("batch", batch)
            .put("burst", cfg.burst)
            .put("max_size", cfg.slot)
            .put("cpu", cpu);
    }
    put_fields(&mut out, serde_json::to_value(&rep)?);
    out.put(
        "drops_note",
        "drops are sequence gaps; loss after the last message received shows none: compare \
         packets with the sender's sent",
    );
    if a.json {
        out.put("capabilities", serde_json::to_value(t.capabilities())?)
            .put("environment", serde_json::to_value(Environment::capture())?);
    } else {
        // What the kernel reported once traffic flowed (NAPI id).
        for (k, v) in t.capabilities().lines() {
            if k.starts_with("napi") || k.starts_with("busy_poll_active") {
                out.put(&k, v);
            }
        }
    }
    out.print(a.json);
    if rep.packets == 0 && rep.stopped_by != StoppedBy::Interrupted {
        eprintln!("hftnet sink: nothing received in {:?}", cfg.duration);
        return Ok(ExitCode::from(EXIT_NOTHING));
    }
    Ok(ExitCode::SUCCESS)
}
