//! `hftnet fanout`: one multicast sender, N receivers in a star lab, one-way
//! latency and loss per receiver and the spread between them. The run is
//! `hftnet_bench::fanout::run_in_lab`; this file parses and prints.

use std::fs::File;
use std::io::{BufWriter, Write};
use std::net::SocketAddrV4;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result};
use clap::Args;
use hftnet_bench::clock::Clock;
use hftnet_bench::fanout::{
    DEFAULT_GROUP, FanoutConfig, FanoutReport, LabFanout, MAX_RECEIVERS, Placement, run_in_lab,
};
use hftnet_bench::report::comment_lines;
use hftnet_bench::stats::HGRM_MICROSECONDS;

use crate::util::{parse_duration, parse_size, stop_on_signals};

/// Exit code when no receiver got anything.
const EXIT_SILENT: u8 = 3;
/// Exit code when the run finished but a receiver lost, duplicated or
/// corrupted messages, or a send failed.
const EXIT_NOT_CLEAN: u8 = 1;

/// `hftnet fanout`.
#[derive(Debug, Args)]
#[command(after_help = "\
One-way latency needs one clock at both ends: true here (every namespace is on this machine and \
reads the same TSC or CLOCK_MONOTONIC), not across machines.

Exit status: 0 every receiver got every message once; 1 a receiver lost, duplicated or corrupted \
messages (or a send failed); 2 bad input or environment (e.g. not root); 3 no receiver got \
anything.

Examples:
  hftnet fanout --receivers 8 --rate 20000 --duration 10s
  hftnet fanout --receivers 4 --rx-param '2:loss=0.01&faults_on=rx' --json
  hftnet fanout --receivers 16 --sockets --rx-params rx=spin --hgrm-dir /tmp/fan")]
pub struct FanoutArgs {
    /// Receivers (1 to 16), each in its own network namespace behind its own
    /// veth on a bridge (or, with --sockets, each a socket of one namespace).
    #[arg(long, default_value_t = 4, value_parser = parse_receivers)]
    receivers: usize,
    /// Put every receiver on its own socket in one namespace instead.
    #[arg(long)]
    sockets: bool,
    /// Messages per second, sent on a timetable (latency measured from the
    /// scheduled send time).
    #[arg(long, default_value_t = 10_000)]
    rate: u64,
    /// Measured messages (default 10000 unless --duration is given).
    #[arg(long, conflicts_with = "duration")]
    count: Option<u64>,
    /// Send for this long instead of a count (e.g. 10s).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Messages sent first and counted apart.
    #[arg(long, default_value_t = 100)]
    warmup: u64,
    /// Message size in bytes (at least 20: the probe header).
    #[arg(long, default_value = "64", value_parser = parse_size)]
    size: usize,
    /// Multicast group and port.
    #[arg(long, default_value_t = DEFAULT_GROUP, value_parser = parse_group)]
    group: SocketAddrV4,
    /// Extra parameters of every receiver's mcast:// URI, e.g. rx=spin&rcvbuf=64K.
    #[arg(long, default_value = "")]
    rx_params: String,
    /// Extra parameters of one receiver's URI, as INDEX:PARAMS (repeatable),
    /// e.g. 2:loss=0.01&faults_on=rx&seed=7.
    #[arg(long = "rx-param", value_parser = parse_rx_param)]
    rx_param: Vec<(usize, String)>,
    /// A receiver that joins the group late, as INDEX:SEQ (repeatable): it
    /// opens its socket once the sender has sent message SEQ (warm-up
    /// included); what came before counts as lost, and first_seq says where
    /// it started.
    #[arg(long = "join-late", value_parser = parse_join_late)]
    join_late: Vec<(usize, u64)>,
    /// Extra parameters of the sender's mcast:// URI, e.g. pcap=/tmp/tx.pcap.
    #[arg(long, default_value = "")]
    tx_params: String,
    /// How long receivers wait for stragglers after the last send.
    #[arg(long, default_value = "500ms", value_parser = parse_duration)]
    drain: Duration,
    /// Print one JSON object on stdout instead of the table.
    #[arg(long)]
    json: bool,
    /// Write each receiver's one-way histograms as DIR/rxN.hgrm (from the
    /// scheduled send time) and DIR/rxN-from-send.hgrm (from the send call),
    /// HdrHistogram text in µs; the directory is created if missing.
    #[arg(long)]
    hgrm_dir: Option<PathBuf>,
}

fn parse_receivers(s: &str) -> Result<usize, String> {
    match s.parse::<usize>() {
        Ok(n) if (1..=MAX_RECEIVERS).contains(&n) => Ok(n),
        _ => Err(format!(
            "{s:?} receivers: use 1 to {MAX_RECEIVERS} (each is a namespace and a thread)"
        )),
    }
}

fn parse_group(s: &str) -> Result<SocketAddrV4, String> {
    let a: SocketAddrV4 = s
        .parse()
        .map_err(|_| format!("{s:?} is not GROUP:PORT, e.g. 239.1.1.1:9400"))?;
    if !a.ip().is_multicast() || a.port() == 0 {
        return Err(format!(
            "{s:?}: the group must be multicast (224.0.0.0/4, e.g. 239.1.1.1) with a port above 0"
        ));
    }
    Ok(a)
}

fn parse_join_late(s: &str) -> Result<(usize, u64), String> {
    let bad = || format!("{s:?} is not INDEX:SEQ, e.g. 1:5000");
    let (i, q) = s.split_once(':').ok_or_else(bad)?;
    let i: usize = i.parse().map_err(|_| bad())?;
    let q: u64 = q.parse().map_err(|_| bad())?;
    if i >= MAX_RECEIVERS {
        return Err(format!(
            "{s:?}: receiver index {i} is out of range (0 to {})",
            MAX_RECEIVERS - 1
        ));
    }
    Ok((i, q))
}

fn parse_rx_param(s: &str) -> Result<(usize, String), String> {
    let bad = || format!("{s:?} is not INDEX:PARAMS, e.g. 2:loss=0.01&faults_on=rx");
    let (i, p) = s.split_once(':').ok_or_else(bad)?;
    let i: usize = i.parse().map_err(|_| bad())?;
    if i >= MAX_RECEIVERS {
        return Err(format!(
            "{s:?}: receiver index {i} is out of range (0 to {})",
            MAX_RECEIVERS - 1
        ));
    }
    Ok((i, p.to_owned()))
}

/// Runs `hftnet fanout`.
pub fn fanout(a: FanoutArgs) -> Result<ExitCode> {
    let cfg = FanoutConfig {
        size: a.size,
        count: if a.duration.is_some() {
            a.count
        } else {
            Some(a.count.unwrap_or(10_000))
        },
        duration: a.duration,
        rate: a.rate,
        warmup: a.warmup,
        drain: a.drain,
    };
    let lab = LabFanout {
        receivers: a.receivers,
        placement: if a.sockets {
            Placement::Sockets
        } else {
            Placement::Namespaces
        },
        group: a.group,
        tx_params: a.tx_params,
        rx_params: a.rx_params,
        receiver_params: a.rx_param,
        join_late: a.join_late,
    };
    // A directory that cannot be made fails now, not after the run.
    if let Some(dir) = &a.hgrm_dir {
        std::fs::create_dir_all(dir).with_context(|| {
            format!("--hgrm-dir {}: cannot create the directory", dir.display())
        })?;
    }
    let stop = stop_on_signals()?;
    let clock = Clock::new();
    let out = run_in_lab(&lab, &cfg, clock, &stop)?;
    let silent = out.all_silent();
    let report = FanoutReport::new(&lab, &cfg, out, &clock);
    // The results first: a file that cannot be written loses nothing.
    if a.json {
        println!("{}", serde_json::to_string(&report)?);
    } else {
        print!("{}", comment_lines(&report.header_lines()));
        print!("{}", report.outcome.table());
        print!("{}", comment_lines(&report.result_lines()));
    }
    std::io::stdout().flush()?;
    if let Some(dir) = &a.hgrm_dir {
        for r in &report.outcome.receivers {
            for (suffix, hist) in [("", &r.stats.one_way), ("-from-send", &r.stats.from_send)] {
                let path = dir.join(format!("{}{suffix}.hgrm", r.name));
                let f =
                    File::create(&path).with_context(|| format!("creating {}", path.display()))?;
                let mut w = BufWriter::new(f);
                hist.write_hgrm(&mut w, HGRM_MICROSECONDS)?;
                w.flush()
                    .with_context(|| format!("writing {}", path.display()))?;
            }
        }
    }
    Ok(if silent {
        eprintln!("hftnet fanout: no receiver got any message");
        ExitCode::from(EXIT_SILENT)
    } else if !report.clean {
        ExitCode::from(EXIT_NOT_CLEAN)
    } else {
        ExitCode::SUCCESS
    })
}
