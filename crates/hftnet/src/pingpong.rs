//! `hftnet ping` and `hftnet pong`.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use hftnet_bench::clock::Clock;
use hftnet_bench::env::Environment;
use hftnet_bench::pingpong::{
    PingConfig, PongConfig, Protocol, run_ping_timestamps_until, run_ping_until, run_pong,
};
use hftnet_bench::report::{PingReport, comment_lines};
use hftnet_bench::stats::HGRM_MICROSECONDS;
use hftnet_io::{Role, Transport, dispatch};

use crate::util::{
    choose_cpu, endpoint_for_command, parse_duration, parse_size, place, stop_on_signals,
};

/// Exit code of a ping whose peer stopped answering.
const EXIT_UNREACHABLE: u8 = 3;

/// `--protocol`: the message format of ping and pong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, ValueEnum)]
pub enum ProtocolArg {
    /// hftnet's probe (20-byte header); pong echoes every message byte for byte.
    #[default]
    Hftnet,
    /// sockperf's 14-byte header: ping measures against `sockperf server`,
    /// pong answers sockperf's ping-pong, under-load and throughput clients.
    Sockperf,
}

impl From<ProtocolArg> for Protocol {
    fn from(p: ProtocolArg) -> Self {
        match p {
            ProtocolArg::Hftnet => Self::Hftnet,
            ProtocolArg::Sockperf => Self::Sockperf,
        }
    }
}

/// The URI a sockperf peer needs: a tcp:// URI frames its stream with
/// sockperf's header; another framing is refused.
fn uri_for_protocol(uri: &str, protocol: Protocol) -> Result<String> {
    if protocol != Protocol::Sockperf || !uri.starts_with("tcp://") {
        return Ok(uri.to_string());
    }
    if let Some(f) = uri
        .split_once('?')
        .and_then(|(_, q)| q.split('&').find_map(|kv| kv.strip_prefix("framing=")))
    {
        if f != "sockperf" {
            bail!(
                "--protocol sockperf over tcp:// needs sockperf's framing (its header's length \
                 field), not framing={f}: leave framing= out or write framing=sockperf"
            );
        }
        return Ok(uri.to_string());
    }
    let sep = if uri.contains('?') { '&' } else { '?' };
    Ok(format!("{uri}{sep}framing=sockperf"))
}

#[derive(Debug, Args)]
pub struct PingArgs {
    /// Transport URI of the echo server, e.g. udp://198.18.0.2:9000?rx=spin
    uri: String,
    /// Message size in bytes (at least the header: 20 for hftnet's probe,
    /// 14 for sockperf's).
    #[arg(long, default_value = "64", value_parser = parse_size)]
    size: usize,
    /// Measured round trips (default 100000 unless --duration is given).
    #[arg(long, conflicts_with = "duration")]
    count: Option<u64>,
    /// Measure for this long instead of a count (e.g. 10s).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Probes sent first and not measured.
    #[arg(long, default_value_t = 10_000)]
    warmup: u64,
    /// Send at this fixed rate (probes/s) and measure from the scheduled send time.
    #[arg(long)]
    rate: Option<u64>,
    /// How long to wait for each reply before counting it lost.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    timeout: Duration,
    /// Pin the client thread to this CPU (overrides nothing: must agree with cpu= in the URI).
    #[arg(long)]
    cpu: Option<usize>,
    /// Run as SCHED_FIFO with this priority (needs CAP_SYS_NICE or RLIMIT_RTPRIO).
    #[arg(long)]
    fifo: Option<i32>,
    /// Lock all memory (mlockall) before measuring.
    #[arg(long)]
    mlock: bool,
    /// Print one JSON object on stdout instead of `# key: value` lines.
    #[arg(long)]
    json: bool,
    /// Write the round-trip histogram in HdrHistogram's .hgrm text format (µs).
    #[arg(long)]
    hgrm: Option<std::path::PathBuf>,
    /// Split each round trip at the kernel's software timestamps: user send →
    /// kernel TX (SND), kernel TX → kernel RX of the reply, kernel RX → user
    /// receive. Adds timestamps=rx,tx to a udp:// or mcast:// URI without timestamps=.
    #[arg(long)]
    timestamps: bool,
    /// Message format: hftnet (our probe, any echo server answers it) or
    /// sockperf (face a `sockperf server`; a tcp:// URI gets framing=sockperf).
    #[arg(long, value_enum, default_value_t = ProtocolArg::Hftnet)]
    protocol: ProtocolArg,
}

/// The URI with `timestamps=rx,tx` added when `--timestamps` asks for it and
/// the URI does not choose its own.
fn with_timestamps(uri: &str, on: bool) -> String {
    if !on || uri.contains("timestamps=") {
        return uri.to_string();
    }
    let sep = if uri.contains('?') { '&' } else { '?' };
    format!("{uri}{sep}timestamps=rx,tx")
}

#[derive(Debug, Args)]
pub struct PongArgs {
    /// Transport URI to serve, e.g. udp://198.18.0.2:9000?rx=spin
    #[arg(required_unless_present = "serve_ladder")]
    uri: Option<String>,
    /// Serve `hftnet lab --ladder --peer ADDR` from another machine: listen for its
    /// control channel on ADDR (IP:PORT) and run each rung's server here (the rungs
    /// listen on the same IP), isolating the server CPU for the rungs that ask. Until
    /// Ctrl-C.
    #[arg(long, value_name = "ADDR", conflicts_with_all = ["uri", "duration", "json", "burst"])]
    serve_ladder: Option<std::net::SocketAddr>,
    /// With --serve-ladder: this machine's interface facing the client (its layer-2
    /// rungs', and whose IRQs the IRQ rung looks at).
    #[arg(long, requires = "serve_ladder", value_parser = crate::util::parse_iface)]
    iface: Option<String>,
    /// Pin the server thread to this CPU.
    #[arg(long)]
    cpu: Option<usize>,
    /// Stop after this long (default: until interrupted).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Run as SCHED_FIFO with this priority.
    #[arg(long)]
    fifo: Option<i32>,
    /// Lock all memory (mlockall).
    #[arg(long)]
    mlock: bool,
    /// Messages received per call (1 is lowest latency).
    #[arg(long, default_value_t = 1)]
    burst: usize,
    /// Print the configuration lines on stderr and, at the end, one JSON
    /// object on stdout: the counters and the transport's capabilities
    /// (ring and UMEM accounting included).
    #[arg(long)]
    json: bool,
    /// Message format: hftnet (echo every message byte for byte) or sockperf
    /// (answer sockperf's clients as `sockperf server` does: only messages
    /// asking for a reply; a tcp:// URI gets framing=sockperf).
    #[arg(long, value_enum, default_value_t = ProtocolArg::Hftnet)]
    protocol: ProtocolArg,
}

pub fn ping(a: PingArgs) -> Result<ExitCode> {
    let protocol = Protocol::from(a.protocol);
    let uri = uri_for_protocol(&with_timestamps(&a.uri, a.timestamps), protocol)?;
    let ep = endpoint_for_command(&uri, "ping")?;
    let cfg = PingConfig {
        size: a.size,
        count: if a.duration.is_some() {
            a.count
        } else {
            Some(a.count.unwrap_or(100_000))
        },
        duration: a.duration,
        warmup: a.warmup,
        rate: a.rate,
        reply_timeout: a.timeout,
        give_up_after: 3,
        protocol,
    };
    cfg.validate(ep.max_message())?;
    let cpu = choose_cpu(a.cpu, ep.cpu())?;
    let placement = place(cpu, a.fifo, a.mlock)?;
    let clock = Clock::new();
    let mut t = ep
        .open(Role::Client)
        .with_context(|| format!("opening {uri}"))?;
    if a.timestamps {
        let caps = t.capabilities().legacy();
        if !(caps.rx_timestamps && caps.tx_timestamps) {
            anyhow::bail!(
                "--timestamps needs receive and transmit stamps: a udp:// or mcast:// URI with \
                 timestamps=rx,tx (or without timestamps=), not {uri}"
            );
        }
    }
    if !a.json {
        let mut head: Vec<(String, String)> = vec![
            ("command".into(), "ping".into()),
            ("uri".into(), uri.clone()),
            ("protocol".into(), protocol.name().into()),
            ("message_bytes".into(), cfg.size.to_string()),
            (
                "count".into(),
                cfg.count.map_or("-".into(), |c| c.to_string()),
            ),
            (
                "duration".into(),
                cfg.duration.map_or("-".into(), |d| format!("{d:?}")),
            ),
            ("warmup".into(), cfg.warmup.to_string()),
            (
                "rate_pps".into(),
                cfg.rate.map_or("closed loop".into(), |r| r.to_string()),
            ),
            ("reply_timeout".into(), format!("{:?}", cfg.reply_timeout)),
            ("clock".into(), clock.kind().to_string()),
        ];
        if let Some(r) = clock.fallback_reason() {
            head.push(("clock_note".into(), r.to_string()));
        }
        head.extend(placement);
        head.extend(t.capabilities().lines());
        head.extend(Environment::capture().lines());
        print!("{}", comment_lines(&head));
        std::io::stdout().flush()?;
    }
    let stop = stop_on_signals()?;
    let out = if a.timestamps {
        dispatch!(&mut t, inner => run_ping_timestamps_until(inner, &cfg, clock, &stop))?
    } else {
        dispatch!(&mut t, inner => run_ping_until(inner, &cfg, clock, &stop))?
    };
    let report = PingReport::new(
        &uri,
        &cfg,
        &out,
        &clock,
        cpu,
        t.capabilities(),
        Environment::capture(),
    );
    if let Some(path) = &a.hgrm {
        let f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
        let mut w = BufWriter::new(f);
        out.rtt.write_hgrm(&mut w, HGRM_MICROSECONDS)?;
        w.flush()?;
    }
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        let mut tail = report.result_lines();
        if out.rtt.summary().is_some() {
            tail.push((
                "rtt_note".into(),
                "full round trips in ns; half of them is NOT one-way latency".into(),
            ));
        }
        if let Some(n) = t.capabilities().napi_id() {
            tail.push(("napi_id".into(), n.to_string()));
        }
        if report.breakdown_ns.is_some() {
            tail.push((
                "breakdown_note".into(),
                "send_to_tx + tx_to_rx + rx_to_user is one round trip, in CLOCK_REALTIME ns from \
                 kernel software stamps; percentiles of the parts do not add up exactly"
                    .into(),
            ));
        }
        print!("{}", comment_lines(&tail));
    }
    if out.aborted.as_deref() == Some("interrupted") {
        return Ok(if out.received > 0 {
            ExitCode::SUCCESS
        } else {
            ExitCode::from(EXIT_UNREACHABLE)
        });
    }
    if let Some(why) = &out.aborted {
        eprintln!(
            "hftnet ping: {why}; {} of {} probes lost",
            out.lost, out.sent
        );
        return Ok(ExitCode::from(EXIT_UNREACHABLE));
    }
    if out.received == 0 {
        eprintln!("hftnet ping: no reply received");
        return Ok(ExitCode::from(EXIT_UNREACHABLE));
    }
    Ok(ExitCode::SUCCESS)
}

pub fn pong(a: PongArgs) -> Result<ExitCode> {
    if let Some(listen) = a.serve_ladder {
        return crate::ladder_peer::serve(listen, a.iface, a.cpu);
    }
    let Some(uri) = a.uri.clone() else {
        bail!("name the URI to serve (or --serve-ladder ADDR)");
    };
    if !(1..=hftnet_bench::throughput::MAX_BURST).contains(&a.burst) {
        bail!(
            "--burst {} is outside 1..={}",
            a.burst,
            hftnet_bench::throughput::MAX_BURST
        );
    }
    if a.duration.is_some_and(|d| d.is_zero()) {
        bail!("--duration must be more than zero (leave it out to serve until interrupted)");
    }
    let protocol = Protocol::from(a.protocol);
    let uri = uri_for_protocol(&uri, protocol)?;
    let ep = endpoint_for_command(&uri, "pong")?;
    let cpu = choose_cpu(a.cpu, ep.cpu())?;
    let placement = place(cpu, a.fifo, a.mlock)?;
    let mut t = ep
        .open(Role::Server)
        .with_context(|| format!("opening {uri}"))?;
    let mut head: Vec<(String, String)> = vec![
        ("command".into(), "pong".into()),
        ("uri".into(), uri.clone()),
        ("protocol".into(), protocol.name().into()),
        (
            "duration".into(),
            a.duration
                .map_or("until interrupted".into(), |d| format!("{d:?}")),
        ),
        ("burst".into(), a.burst.to_string()),
    ];
    head.extend(placement);
    head.extend(t.capabilities().lines());
    if a.json {
        eprint!("{}", comment_lines(&head));
    } else {
        print!("{}", comment_lines(&head));
        std::io::stdout().flush()?;
    }
    let stop = stop_on_signals()?;
    let cfg = PongConfig {
        duration: a.duration,
        burst: a.burst,
        max_message: ep.max_message().max(1),
        protocol,
        ..PongConfig::default()
    };
    let out = dispatch!(&mut t, inner => run_pong(inner, &cfg, &stop))?;
    if a.json {
        let report = serde_json::json!({
            "command": "pong",
            "uri": uri,
            "protocol": protocol.name(),
            "received": out.received,
            "echoed": out.echoed,
            "malformed": out.malformed,
            "warmup": out.warmup,
            "not_requested": out.not_requested,
            "bytes": out.bytes,
            "truncated": out.truncated,
            "send_errors": out.send_errors,
            "recv_errors": out.recv_errors,
            "capabilities": t.capabilities(),
        });
        println!("{report}");
        return Ok(ExitCode::SUCCESS);
    }
    let mut tail: Vec<(String, String)> = vec![
        ("received".into(), out.received.to_string()),
        ("echoed".into(), out.echoed.to_string()),
        ("bytes".into(), out.bytes.to_string()),
        ("truncated".into(), out.truncated.to_string()),
        ("send_errors".into(), out.send_errors.to_string()),
        ("recv_errors".into(), out.recv_errors.to_string()),
    ];
    if protocol == Protocol::Sockperf {
        tail.extend([
            ("malformed".into(), out.malformed.to_string()),
            ("warmup".into(), out.warmup.to_string()),
            ("not_requested".into(), out.not_requested.to_string()),
        ]);
    }
    tail.extend(
        t.capabilities()
            .lines()
            .into_iter()
            .filter(|(k, _)| k.starts_with("napi") || k.starts_with("busy_poll_active")),
    );
    print!("{}", comment_lines(&tail));
    Ok(ExitCode::SUCCESS)
}
