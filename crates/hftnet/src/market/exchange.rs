//! `hftnet exchange`: an ITCH 5.0 feed over MoldUDP64 on two feeds (A and
//! B), with heartbeats, a re-request server, and fault injection — or, with
//! `--write`, a Nasdaq-format file of the generated day; with `--orders`, it
//! also takes OUCH 5.0 orders over SoupBinTCP, which meet the generated flow
//! in its matching core. The exchange is
//! `hftnet_apps::exchange`; this module turns the flags into its
//! configuration, opens the transports and prints the report.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Result, anyhow, bail};
use clap::Args;
use hftnet_apps::Transports;
use hftnet_apps::exchange::{
    Exchange, ExchangeConfig, ExchangeConfigError, ExchangeSource, MAX_BURST, MAX_TX_BATCH,
    MIN_PAYLOAD, WriteDayError, session_name_for_run, write_day,
};
use hftnet_apps::order_entry::{Login, OrderEntryConfig, OrderEntryConfigError};
use hftnet_bench::stats::HGRM_MICROSECONDS;
use hftnet_io::Role;
use hftnet_trade::book::BookConfig;
use hftnet_trade::exchange::MAX_HISTORY;
use hftnet_trade::exchange::{MAX_LIMIT, RequestLimits, SourcePrefix};
use hftnet_wire::faults::Faults;
use serde_json::json;

use super::{open_feed, open_optional, put_market, with_feeds};

/// Mixed into `--fault-seed` for feed B, so the two feeds fail differently.
const FEED_B_SEED: u64 = 0x5bd1_e995;
use crate::util::{Report, choose_cpu, parse_duration, place, stop_on_signals};

#[derive(Debug, Args)]
pub struct ExchangeArgs {
    /// Feed A: where downstream packets go, e.g. mcast://239.1.1.1:30001?iface=veth0
    #[arg(long)]
    feed_a: Option<String>,
    /// Feed B: the same packets again, e.g. mcast://239.1.1.2:30002?iface=veth0
    #[arg(long)]
    feed_b: Option<String>,
    /// Serve MoldUDP64 re-requests here, e.g. udp://198.18.0.2:30003
    #[arg(long)]
    retransmit: Option<String>,
    /// Instruments in the generated day.
    #[arg(long, default_value_t = 8)]
    symbols: u16,
    /// Seed of the generated day (same seed, same day).
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Order-flow messages to generate, after the start events and the directory
    /// (default 100000 unless --duration); with --file, records to replay.
    #[arg(long)]
    messages: Option<u64>,
    /// Send for this long, then end the session.
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Messages per second; 0 sends as fast as the transport takes them.
    #[arg(long, default_value_t = 100_000)]
    rate: u64,
    /// Largest burst: each burst sends 1..=N messages (from the seed) back to back.
    #[arg(long, default_value_t = 8)]
    burst: u64,
    /// Replay this ITCH 5.0 file (plain or gzip) instead of generating.
    #[arg(long, conflicts_with_all = ["symbols", "write"])]
    file: Option<PathBuf>,
    /// Write the generated day to this Nasdaq-format file (gzip if it ends in .gz) instead of sending.
    #[arg(long, conflicts_with_all = ["feed_a", "feed_b", "retransmit", "duration"])]
    write: Option<PathBuf>,
    /// MoldUDP64 session name (up to 10 characters). Default: a name of this run's own
    /// (H and 9 letters or digits), so feeds can tell it from an earlier run's exchange.
    #[arg(long)]
    session: Option<String>,
    /// Heartbeat after this long without a packet.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    heartbeat: Duration,
    /// Messages kept for re-requests (1 to 8388608); no more than the day
    /// has when --messages bounds it (without --orders). Their ring (64
    /// bytes a message: 64 MiB by default) is made resident at the start,
    /// not while publishing.
    #[arg(long, default_value_t = 1 << 20)]
    history: usize,
    /// Largest downstream packet in bytes (UDP payload).
    #[arg(long, default_value_t = 1400)]
    max_payload: usize,
    /// Packets cut back to back handed to each feed in one send (1 to 64: one sendmmsg on
    /// udp://...?batch=N, one kick of an xdp:// or packet:// ring). Held only while the next
    /// is cut: they leave when the batch is full, at the end of each round of the loop, with
    /// a heartbeat and at the end. At a set rate each burst leaves as soon as it is
    /// published; only --rate 0 (or catching up) waits (by default a round of 1024
    /// messages, about 24 full packets, leaves in one send). 1: each packet as it is cut
    /// (always with --orders).
    #[arg(long, default_value_t = 32)]
    tx_batch: usize,
    /// Probability that a packet on feed A is dropped.
    #[arg(long, default_value_t = 0.0)]
    loss_a: f64,
    /// Probability that a packet on feed A is sent twice.
    #[arg(long, default_value_t = 0.0)]
    dup_a: f64,
    /// Probability that a packet on feed A is sent after the next one.
    #[arg(long, default_value_t = 0.0)]
    reorder_a: f64,
    /// Probability that a packet on feed B is dropped.
    #[arg(long, default_value_t = 0.0)]
    loss_b: f64,
    /// Probability that a packet on feed B is sent twice.
    #[arg(long, default_value_t = 0.0)]
    dup_b: f64,
    /// Probability that a packet on feed B is sent after the next one.
    #[arg(long, default_value_t = 0.0)]
    reorder_b: f64,
    /// Seed of the fault injection.
    #[arg(long, default_value_t = 1)]
    fault_seed: u64,
    /// After the end of the session, keep answering re-requests this long.
    #[arg(long, default_value = "2s", value_parser = parse_duration)]
    linger: Duration,
    /// Sources whose re-requests are answered: addresses or prefixes, comma-separated
    /// or repeated (e.g. 198.18.0.1 or 198.18.0.0/15). Default: the unicast destinations
    /// of --feed-a and --feed-b; required when a feed is multicast.
    #[arg(long, value_delimiter = ',')]
    allow: Vec<SourcePrefix>,
    /// Re-requested messages per second each source may have answered.
    #[arg(long, default_value_t = RequestLimits::default().messages_per_sec)]
    request_rate: u64,
    /// Reply bytes per second each source may have answered.
    #[arg(long, default_value_t = RequestLimits::default().bytes_per_sec)]
    request_byte_rate: u64,
    /// Messages a source may have answered at once before its rate applies.
    #[arg(long, default_value_t = RequestLimits::default().burst_messages)]
    request_burst: u64,
    /// Reply bytes a source may have answered at once (at least --max-payload).
    #[arg(long, default_value_t = RequestLimits::default().burst_bytes)]
    request_burst_bytes: u64,
    /// Sources whose rate limits are tracked at once; past that, new sources are refused
    /// until one has been idle long enough.
    #[arg(long, default_value_t = RequestLimits::default().max_sources)]
    request_sources: usize,
    /// Re-requested messages per second all sources together may have answered
    /// (the total bucket holds one second of it). Default: 4 × --request-rate.
    #[arg(long)]
    request_total_rate: Option<u64>,
    /// Reply bytes per second all sources together may have answered (the total
    /// bucket holds one second of it). Default: 4 × --request-byte-rate.
    #[arg(long)]
    request_total_byte_rate: Option<u64>,
    /// Build the reference books from what is published and report them (their digest
    /// equals a feed handler's that rebuilt the same books). Costs the exchange about what
    /// the books cost the feed; without it only the counts and the stream digest are kept.
    /// (--write always builds them.)
    #[arg(long)]
    book: bool,
    /// Take orders (OUCH 5.0 over SoupBinTCP 4) on this TCP address, e.g.
    /// tcp://198.18.0.2:30010; they meet the generated flow in the matching core, and
    /// the feed publishes what the core makes of both.
    #[arg(long, requires = "login", conflicts_with = "write")]
    orders: Option<String>,
    /// Who may log in to --orders: USER:PASSWORD (SoupBinTCP: up to 6 and 10 letters or
    /// digits); repeat for several sessions.
    #[arg(long, requires = "orders")]
    login: Vec<String>,
    /// Concurrent order-entry connections at most.
    #[arg(long, default_value_t = 16, requires = "orders")]
    max_clients: usize,
    /// Start the day once this many order-entry logins were accepted, so traders that
    /// log in first see it from the first message (the stock directory included).
    #[arg(long, default_value_t = 0, requires = "orders")]
    wait_logins: usize,
    /// Give up (exit 1) when the logins --wait-logins asks for have not come by then.
    #[arg(long, default_value = "60s", value_parser = parse_duration, requires = "wait_logins")]
    wait_timeout: std::time::Duration,
    /// Write the external tick-to-trade histogram (sending the triggering packet →
    /// receiving the order) to this .hgrm file.
    #[arg(long, requires = "orders")]
    hgrm: Option<PathBuf>,
    /// Pin the publishing thread to this CPU.
    #[arg(long)]
    cpu: Option<usize>,
    /// Print one JSON object instead of `# key: value` lines.
    #[arg(long)]
    json: bool,
}

/// A configuration error in the words of the command line: the flag and its value.
fn flag_error(e: ExchangeConfigError) -> anyhow::Error {
    match e {
        ExchangeConfigError::Burst(b) => {
            anyhow!("--burst {b} must be between 1 and {MAX_BURST}")
        }
        ExchangeConfigError::TxBatch(n) => {
            anyhow!("--tx-batch {n} must be between 1 and {MAX_TX_BATCH}")
        }
        ExchangeConfigError::MaxPayload(n) => anyhow!(
            "--max-payload {n} is too small: a MoldUDP64 packet with the largest ITCH message needs {MIN_PAYLOAD} bytes"
        ),
        ExchangeConfigError::Publisher(e) if e.field == "history" => {
            anyhow!("--history must keep 1 to {MAX_HISTORY} messages (MAX_HISTORY)")
        }
        ExchangeConfigError::Heartbeat(d) => {
            anyhow!("--heartbeat {d:?} is too short: use 1ms or more")
        }
        ExchangeConfigError::Session(s) => {
            anyhow!("--session {s:?}: at most 10 printable ASCII characters")
        }
        ExchangeConfigError::OrderEntry(e) => match e {
            OrderEntryConfigError::Listen(why) => anyhow!("--orders {why}"),
            OrderEntryConfigError::Login(why) => anyhow!("--login {why}"),
            OrderEntryConfigError::MaxClients(n) => anyhow!(
                "--max-clients {n}: from 1 to {}",
                hftnet_io::tcp::MAX_SERVER_CONNECTIONS
            ),
            OrderEntryConfigError::WaitLogins {
                wait,
                logins,
                max_clients,
            } => anyhow!(
                "--wait-logins {wait} is more than the {logins} --login given or --max-clients \
                 {max_clients}: lower it, or give more --login or --max-clients"
            ),
            other => other.into(),
        },
        ExchangeConfigError::RequestLimits(e) => {
            let flag = match e.field {
                "messages_per_sec" => "--request-rate",
                "bytes_per_sec" => "--request-byte-rate",
                "burst_messages" => "--request-burst",
                "burst_bytes" => "--request-burst-bytes",
                "max_sources" => "--request-sources",
                "total_messages_per_sec" => "--request-total-rate",
                "total_bytes_per_sec" => "--request-total-byte-rate",
                other => other,
            };
            anyhow!("{flag}: {}", e.why)
        }
        // The publisher's and the generator's errors name their field; the
        // fault errors say which feed and which probability.
        other => other.into(),
    }
}

pub fn exchange(a: ExchangeArgs) -> Result<ExitCode> {
    if a.write.is_none() && a.feed_a.is_none() && a.feed_b.is_none() {
        bail!("give --feed-a and/or --feed-b to send, or --write FILE to write a file");
    }
    // A session of nothing is a mistake, not a run: refused before anything opens.
    if a.messages == Some(0) {
        bail!("--messages must be at least 1");
    }
    if a.duration.is_some_and(|d| d.is_zero()) {
        bail!("--duration must be more than zero");
    }
    let session = a.session.clone().unwrap_or_else(session_name_for_run);
    let cfg = ExchangeConfig {
        source: a.file.clone().map_or(
            ExchangeSource::Generated { symbols: a.symbols },
            ExchangeSource::File,
        ),
        seed: a.seed,
        messages: match (a.messages, a.duration) {
            (Some(n), _) => Some(n),
            (None, Some(_)) => None,
            (None, None) => Some(100_000),
        },
        duration: a.duration,
        rate: a.rate,
        burst: a.burst,
        session: session.clone(),
        heartbeat: a.heartbeat,
        history: a.history,
        max_payload: a.max_payload,
        tx_batch: a.tx_batch,
        linger: a.linger,
        allow: (!a.allow.is_empty()).then(|| a.allow.clone()),
        request_limits: RequestLimits {
            messages_per_sec: a.request_rate,
            bytes_per_sec: a.request_byte_rate,
            burst_messages: a.request_burst,
            burst_bytes: a.request_burst_bytes,
            max_sources: a.request_sources,
            total_messages_per_sec: a
                .request_total_rate
                .unwrap_or_else(|| a.request_rate.saturating_mul(4).min(MAX_LIMIT)),
            total_bytes_per_sec: a
                .request_total_byte_rate
                .unwrap_or_else(|| a.request_byte_rate.saturating_mul(4).min(MAX_LIMIT)),
        },
        book: a.book.then(BookConfig::all_symbols),
        order_entry: match &a.orders {
            None => None,
            Some(uri) => {
                let mut logins = Vec::with_capacity(a.login.len());
                for l in &a.login {
                    logins.push(Login::parse(l).map_err(|e| flag_error(e.into()))?);
                }
                let mut oe = OrderEntryConfig::new(uri, logins[0].clone());
                oe.logins = logins;
                oe.max_clients = a.max_clients;
                oe.wait_logins = a.wait_logins;
                oe.wait_timeout = a.wait_timeout;
                Some(oe)
            }
        },
    };
    cfg.validate().map_err(flag_error)?;
    if let Some(path) = &a.write {
        let w = write_day(&cfg, path).map_err(|e| match e {
            WriteDayError::Config(e) => flag_error(e),
            other => other.into(),
        })?;
        let mut rep = Report::default();
        rep.put("command", "exchange --write")
            .put("file", path.display().to_string())
            .put("records", w.records);
        put_market(&mut rep, &w.market);
        rep.print(a.json);
        return Ok(ExitCode::SUCCESS);
    }

    // The per-feed faults are the transports' fault middleware (on sends),
    // feed B drawing from its own seed.
    let fa = Faults {
        loss: a.loss_a,
        duplicate: a.dup_a,
        reorder: a.reorder_a,
        ..Faults::NONE
    };
    let fb = Faults {
        loss: a.loss_b,
        duplicate: a.dup_b,
        reorder: a.reorder_b,
        ..Faults::NONE
    };
    let placement = place(choose_cpu(a.cpu, None)?, None, false)?;
    let mut ta = open_feed(&a.feed_a, fa, a.fault_seed, "feed A", "-a")?;
    let mut tb = open_feed(&a.feed_b, fb, a.fault_seed ^ FEED_B_SEED, "feed B", "-b")?;
    let mut tr = open_optional(&a.retransmit, Role::Server, "re-request server")?;
    let stop = stop_on_signals()?;
    let io = Transports {
        retransmit: tr.as_mut(),
        ..Transports::new()
    };
    let mut ex = Exchange::new(&cfg).map_err(|e| match e {
        hftnet_apps::exchange::ExchangeError::Config(e) => flag_error(e),
        other => other.into(),
    })?;
    with_feeds!(ta.as_mut(), tb.as_mut(), io => ex.run(io, &stop))?;
    let r = ex.report();
    if let (Some(path), Some(h)) = (&a.hgrm, ex.tick_to_trade()) {
        let f =
            std::fs::File::create(path).map_err(|e| anyhow!("--hgrm {}: {e}", path.display()))?;
        h.write_hgrm(std::io::BufWriter::new(f), HGRM_MICROSECONDS)
            .map_err(|e| anyhow!("--hgrm {}: {e}", path.display()))?;
    }

    let mut rep = Report::default();
    rep.put("command", "exchange")
        .put("session", session)
        .put(
            "source",
            a.file.as_ref().map_or_else(
                || format!("generated: seed {}, {} symbols", a.seed, a.symbols),
                |p| p.display().to_string(),
            ),
        )
        .put("feed_a", a.feed_a.clone())
        .put("feed_b", a.feed_b.clone())
        .put("retransmit", a.retransmit.clone())
        .put("orders", a.orders.clone());
    for (k, v) in placement {
        rep.put(&k, v);
    }
    rep.put("messages", r.messages)
        .put("packets", r.packets)
        .put("heartbeats", r.heartbeats)
        .put("seconds", (r.seconds * 1e6).round() / 1e6)
        .put("messages_per_sec", r.messages_per_sec)
        .put(
            "messages_per_packet",
            (r.messages as f64 / r.packets.max(1) as f64 * 100.0).round() / 100.0,
        )
        .put("rate_target", r.rate_target)
        .put("behind_schedule_max_us", r.behind_schedule_max_us)
        .put("schedule_restarts", r.schedule_restarts)
        .put("send_errors", r.send_errors)
        .put("faults", json!(r.faults))
        .put("retransmission", json!(r.retransmission))
        .put("counts", json!(r.market.counts))
        .put("stream_digest", format!("{:016x}", r.market.stream_digest))
        .put("book", json!(r.market.book));
    if let Some(oe) = &r.order_entry {
        rep.put("order_entry", json!(oe));
    }
    if let Some(e) = &r.error {
        rep.put("error", e.clone());
    }
    rep.print(a.json);
    let achieved = r.messages as f64 / r.seconds.max(1e-9);
    if a.rate > 0 && r.messages > 1000 && achieved < 0.95 * a.rate as f64 {
        eprintln!(
            "hftnet exchange: sent {achieved:.0} messages/s, below the --rate {} asked for (this machine or transport cannot go faster; schedule restarted {} times)",
            a.rate, r.schedule_restarts
        );
    }
    if r.send_errors > 0 {
        eprintln!(
            "hftnet exchange: {} packets could not be sent (socket buffer full or no route); receivers will see them as loss",
            r.send_errors
        );
    }
    let refused = &r.retransmission.refusals;
    if refused.total() > 0 || r.retransmission.cut > 0 {
        eprintln!(
            "hftnet exchange: re-requests refused: {} from sources not allowed (allowed: {}; add \
             sources with --allow), {} over their rate limit, {} for lack of room among the \
             sources tracked, {} over the total rate limit of all sources (see \
             --request-total-rate); {} answered only in part (rate limit; see --request-rate \
             and --request-burst)",
            refused.not_allowed,
            if r.retransmission.allowed.is_empty() {
                "none but in-process".to_string()
            } else {
                r.retransmission.allowed.join(", ")
            },
            refused.rate_limited,
            refused.too_many_sources,
            refused.total_limited,
            r.retransmission.cut
        );
    }
    if let Some(e) = &r.error {
        eprintln!(
            "hftnet exchange: {e}; the session was ended there and the figures above cover what was sent"
        );
        return Ok(ExitCode::from(1));
    }
    if let Some(oe) = r.order_entry.as_ref().filter(|o| o.store_errors > 0) {
        eprintln!(
            "hftnet exchange: {} order-entry messages could not be kept in their session's \
             stream (full: {} messages or {} bytes per session); those clients missed them",
            oe.store_errors,
            cfg.order_entry.as_ref().map_or(0, |o| o.store.max_messages),
            cfg.order_entry.as_ref().map_or(0, |o| o.store.max_bytes)
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
