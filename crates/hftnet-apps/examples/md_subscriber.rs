//! A subscriber of the feed handler's market-data records, on any URI:
//!
//! ```text
//! cargo run --release -p hftnet-apps --example md_subscriber -- shm://md \
//!     [--count N] [--duration D] [--idle-timeout D] [--top N] [--json]
//! ```
//!
//! (with `hftnet feed ... --publish shm://md` running). It keeps the top of
//! book per stock, counts what it missed from the publisher's sequence
//! numbers, and prints the latency of each hop (`hftnet_apps::md_subscriber`
//! does all of it) and the transport's own capabilities and counters. It
//! ends at the end of the stream, `--count` records, `--duration`, after
//! `--idle-timeout` (10 s) without a record, or on Ctrl-C. Exit code: 0 every
//! record received, 1 records missed or not understood, 2 bad input, 3
//! nothing received.

use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use hftnet_apps::md_subscriber::{MdSubscriber, SubscriberConfig};
use hftnet_io::uri::parse_duration;
use hftnet_io::{Endpoint, OneWay, Role, Transport, dispatch};
use hftnet_wire::itch50::Price4;

const USAGE: &str = "usage: md_subscriber URI [--count N] [--duration D] [--idle-timeout D] \
                     [--top N] [--json]   (e.g. shm://md, udp://127.0.0.1:31000)";

struct Args {
    uri: String,
    cfg: SubscriberConfig,
    json: bool,
}

fn parse_args() -> Result<Args, String> {
    let mut it = std::env::args().skip(1);
    let (mut uri, mut cfg, mut json) = (None, SubscriberConfig::default(), false);
    while let Some(a) = it.next() {
        let mut value = |name: &str| it.next().ok_or(format!("{name} needs a value"));
        let duration = |name: &str, v: String| {
            parse_duration(&v).ok_or(format!("{name} {v:?}: a duration such as 10s or 500ms"))
        };
        match a.as_str() {
            "--count" => {
                let v = value("--count")?;
                cfg.count = Some(
                    v.parse()
                        .ok()
                        .filter(|n| *n > 0)
                        .ok_or(format!("--count {v:?}: a whole number of records above 0"))?,
                );
            }
            "--duration" => cfg.duration = Some(duration("--duration", value("--duration")?)?),
            "--idle-timeout" => {
                cfg.idle_timeout = duration("--idle-timeout", value("--idle-timeout")?)?;
            }
            "--top" => {
                let v = value("--top")?;
                cfg.top = v
                    .parse()
                    .map_err(|_| format!("--top {v:?}: a number of books"))?;
            }
            "--json" => json = true,
            "-h" | "--help" => return Err(USAGE.into()),
            s if s.starts_with('-') => return Err(format!("unknown option {s}; {USAGE}")),
            s if uri.is_none() => uri = Some(s.to_string()),
            s => return Err(format!("one URI only (got {s:?} too); {USAGE}")),
        }
    }
    Ok(Args {
        uri: uri.ok_or(format!("no URI; {USAGE}"))?,
        cfg,
        json,
    })
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(a) => a,
        Err(e) => {
            eprintln!("md_subscriber: {e}");
            return ExitCode::from(2);
        }
    };
    // A subscriber: `shm://md` becomes a reader of ring `md`.
    let mut t = match Endpoint::parse(&args.uri)
        .map_err(|e| e.to_string())
        .and_then(|ep| {
            ep.one_way(OneWay::Subscribe)
                .open(Role::Server)
                .map_err(|e| e.to_string())
        }) {
        Ok(t) => t,
        Err(e) => {
            eprintln!("md_subscriber: {}: {e}", args.uri);
            return ExitCode::from(2);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(sig, stop.clone()) {
            eprintln!("md_subscriber: installing the signal handler: {e}");
            return ExitCode::from(2);
        }
    }
    let mut sub = MdSubscriber::new(args.cfg.clone());
    dispatch!(&mut t, t => sub.run(t, &stop));
    let r = sub.report();
    let caps = t.capabilities();
    if args.json {
        let mut v = serde_json::to_value(&r).expect("a report serialises");
        v["uri"] = args.uri.clone().into();
        v["transport"] = serde_json::to_value(&caps).expect("capabilities serialise");
        println!("{v}");
    } else {
        print_text(&args.uri, &r, &caps);
    }
    if r.received == 0 {
        eprintln!(
            "md_subscriber: nothing received ({}); is `hftnet feed --publish {}` running?",
            r.stopped.as_str(),
            args.uri
        );
        return ExitCode::from(3);
    }
    if r.missed > 0 || r.malformed > 0 {
        eprintln!(
            "md_subscriber: {} records missed in {} gaps, {} messages not records",
            r.missed, r.gaps, r.malformed
        );
        return ExitCode::from(1);
    }
    ExitCode::SUCCESS
}

fn print_text(
    uri: &str,
    r: &hftnet_apps::md_subscriber::SubscriberReport,
    caps: &hftnet_io::Capabilities,
) {
    println!("# uri: {uri}");
    println!("# stopped: {}", r.stopped.as_str());
    println!("# seconds: {:.3}", r.seconds);
    println!(
        "# records: {} top of book, {} trades, {} end ({} messages, {} not records)",
        r.records.top_of_book, r.records.trades, r.records.end, r.received, r.malformed
    );
    println!(
        "# sequence: {:?} to {:?}; {} gaps, {} missed, {} late",
        r.first_sequence, r.last_sequence, r.gaps, r.missed, r.late
    );
    if let Some(e) = r.end {
        println!(
            "# end of stream: sequence {}, {} top of book and {} trade records published",
            e.sequence, e.top_records, e.trade_records
        );
    }
    for (name, h) in [
        ("feed receive -> publish", r.feed_receive_to_publish_ns),
        ("publish -> receive (transport)", r.publish_to_receive_ns),
        ("feed receive -> receive (end to end)", r.end_to_end_ns),
    ] {
        match h {
            Some(h) => println!(
                "# {name} ns: p50 {} p90 {} p99 {} p99.9 {} max {} ({} records)",
                h.p50, h.p90, h.p99, h.p99_9, h.max, h.samples
            ),
            None => println!("# {name} ns: no record"),
        }
    }
    if r.clock_inversions > 0 {
        println!(
            "# clock inversions: {} (received before published: not one CLOCK_MONOTONIC)",
            r.clock_inversions
        );
    }
    if let Some(e) = &r.first_recv_error {
        println!("# receive errors: {} (first: {e})", r.recv_errors);
    }
    // The transport's own lines (a shared-memory reader's laps and misses
    // among them), whatever the backend.
    for (k, v) in caps.lines() {
        println!("# transport.{k}: {v}");
    }
    let side = |q: Option<(u32, u32)>| {
        q.map_or("-".to_string(), |(p, s)| {
            format!("{s}@{}", Price4::from_raw(p))
        })
    };
    for t in &r.tops {
        println!(
            "# top.{}: {} x {} ({} updates, {} trades)",
            t.symbol,
            side(t.bid),
            side(t.ask),
            t.updates,
            t.trades
        );
    }
}
