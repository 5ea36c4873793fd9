//! `hftnet feed`: receive feeds A and B over any transport, arbitrate,
//! recover gaps by re-request, build the books, publish a market-data record
//! per top-of-book change and per trade (`--publish`), report every counter.
//! The feed handler is `hftnet_apps::feed`; this module turns the flags into
//! its configuration, opens the transports and prints the report.

use std::process::ExitCode;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::Args;
use hftnet_apps::Transports;
use hftnet_apps::feed::{FeedHandlerConfig, FeedHandlerConfigError, FeedStop, run_feed_handler};
use hftnet_apps::market::book_config;
use hftnet_io::{AnyTransport, Endpoint, OneWay, Role};
use hftnet_trade::market::TopUpdate;
use hftnet_wire::md::RECORD_LEN;
use serde_json::json;

use super::{WindowArgs, open_optional, put_market, top_of_book_json, with_feeds};
use crate::util::{Report, choose_cpu, parse_duration, place, stop_on_signals};

/// Exit code when messages were lost for good.
const EXIT_LOSS: u8 = 1;
/// Exit code when nothing was received at all.
const EXIT_NOTHING: u8 = 3;

#[derive(Debug, Args)]
pub struct FeedArgs {
    /// Feed A, e.g. mcast://239.1.1.1:30001?iface=veth0&rx=spin
    #[arg(long)]
    feed_a: Option<String>,
    /// Feed B, e.g. mcast://239.1.1.2:30002?iface=veth0&rx=spin
    #[arg(long)]
    feed_b: Option<String>,
    /// The exchange's re-request server, e.g. udp://198.18.0.2:30003
    #[arg(long)]
    retransmit: Option<String>,
    /// Publish a market-data record per top-of-book change and per trade, e.g.
    /// shm://md (the writer of shared-memory ring md) or udp://HOST:PORT
    #[arg(long)]
    publish: Option<String>,
    /// Never re-request: gaps the other feed does not fill are reported lost.
    #[arg(long)]
    no_recovery: bool,
    /// How long a gap waits for the other feed before it is re-requested (or lost).
    #[arg(long, default_value = "1ms", value_parser = parse_duration)]
    gap_wait: Duration,
    /// How long to wait for the answer to a re-request before asking again.
    #[arg(long, default_value = "50ms", value_parser = parse_duration)]
    request_timeout: Duration,
    /// Accept only this MoldUDP64 session (default: the first one seen).
    #[arg(long)]
    session: Option<String>,
    /// Start at the first packet seen instead of sequence 1 (no recovery of the past).
    #[arg(long)]
    join: bool,
    /// Keep books only for these symbols (comma-separated); default all.
    #[arg(long, value_delimiter = ',')]
    symbols: Vec<String>,
    /// Stop after this long (default: at the end of the session).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Stop when nothing arrived for this long.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    idle_timeout: Duration,
    /// Books printed at the end (by stock locate).
    #[arg(long, default_value_t = 20)]
    top: usize,
    #[command(flatten)]
    window: WindowArgs,
    /// Pin the receiving thread to this CPU.
    #[arg(long)]
    cpu: Option<usize>,
    /// Print one JSON object instead of `# key: value` lines.
    #[arg(long)]
    json: bool,
}

pub fn feed(a: FeedArgs) -> Result<ExitCode> {
    if a.feed_a.is_none() && a.feed_b.is_none() {
        anyhow::bail!("give --feed-a and/or --feed-b");
    }
    // Zero would end the run before it starts (--duration, --idle-timeout)
    // or re-request a gap over and over without waiting (--request-timeout):
    // refused before anything opens. (--gap-wait 0 is legitimate: re-request at once.)
    for (flag, d) in [
        ("--duration", a.duration),
        ("--idle-timeout", Some(a.idle_timeout)),
        ("--request-timeout", Some(a.request_timeout)),
    ] {
        if d.is_some_and(|d| d.is_zero()) {
            anyhow::bail!("{flag} must be more than zero");
        }
    }
    let recovery = !a.no_recovery && a.retransmit.is_some();
    if !a.no_recovery && a.retransmit.is_none() {
        eprintln!(
            "hftnet feed: no --retransmit server given: gaps both feeds miss cannot be recovered and will be reported lost"
        );
    }
    let mut cfg = FeedHandlerConfig {
        session: a.session.clone(),
        join: a.join,
        recovery,
        gap_wait: a.gap_wait,
        request_timeout: a.request_timeout,
        book: book_config(&a.symbols).map_err(|e| anyhow!("--symbols: {e}"))?,
        duration: a.duration,
        idle_timeout: a.idle_timeout,
        top: a.top,
        yield_when_idle: true,
        ..FeedHandlerConfig::default()
    };
    a.window.apply(&mut cfg)?;
    cfg.validate().map_err(|e| match e {
        FeedHandlerConfigError::Session(s) => {
            anyhow!("--session {s:?}: at most 10 printable ASCII characters")
        }
        other => other.into(),
    })?;
    let placement = place(choose_cpu(a.cpu, None)?, None, false)?;
    let mut ta = open_optional(&a.feed_a, Role::Server, "feed A")?;
    let mut tb = open_optional(&a.feed_b, Role::Server, "feed B")?;
    let mut tr = open_optional(&a.retransmit, Role::Client, "re-request server")?;
    let mut tp = a.publish.as_deref().map(open_publish).transpose()?;
    let stop = stop_on_signals()?;
    let io = Transports {
        retransmit: tr.as_mut(),
        ..Transports::new()
    };
    // Records go out through one indirect call to the concrete transport.
    let io = match tp.as_mut() {
        Some(t) => hftnet_io::dispatch!(t, p => io.publish(p)),
        None => io,
    };
    // The strategy hook: nothing to do here but count, which the report does.
    let mut on_top = |_: &TopUpdate| {};
    let r = with_feeds!(ta.as_mut(), tb.as_mut(), io => {
        run_feed_handler(&cfg, io, &stop, &mut on_top)
    })?;

    let why = r.stopped.as_str();
    let mut rep = Report::default();
    rep.put("command", "feed")
        .put("stopped", why)
        .put("session", r.session.clone())
        .put("feed_a", a.feed_a.clone())
        .put("feed_b", a.feed_b.clone())
        .put("retransmit", a.retransmit.clone())
        .put("recovery", r.recovery);
    for (k, v) in placement {
        rep.put(&k, v);
    }
    rep.put("seconds", (r.seconds * 1e3).round() / 1e3)
        .put("delivered", r.delivered)
        .put("messages_per_sec", r.messages_per_sec)
        .put("lost", r.lost)
        .put(
            "lost_ranges",
            r.lost_ranges
                .iter()
                .map(|l| format!("{}+{}", l.first, l.count))
                .collect::<Vec<_>>(),
        )
        .put("lost_ranges_not_listed", r.lost_ranges_not_listed)
        .put("gaps", r.gaps)
        .put("overflows", r.overflows)
        .put("requests", r.requests)
        .put("requested_messages", r.requested_messages)
        .put("buffered_high_water", r.buffered_high_water)
        .put("next_expected", r.next_expected)
        .put("highest_seen", r.highest_seen)
        .put("unresolved", r.unresolved)
        .put("buffered", r.buffered)
        .put("end_of_session", r.end_of_session)
        .put("top_updates", r.top_updates)
        .put("recv_errors", r.recv_errors)
        .put("send_errors", r.send_errors)
        .put("a", json!(r.a))
        .put("b", json!(r.b))
        .put("retransmission", json!(r.retransmission));
    if let Some(t) = r.handle_packet_ns {
        rep.put("handle_packet_ns", json!(t));
    }
    if let Some(p) = &r.publish {
        let mut v = json!(p);
        v["uri"] = json!(a.publish);
        v["rx_stamp_source"] = json!(p.rx_stamp.describe());
        rep.put("publish", v);
    }
    put_market(&mut rep, &r.market);
    rep.put("top_of_book", top_of_book_json(&r.top_of_book));
    rep.print(a.json);
    if r.delivered == 0 && r.lost == 0 && r.unresolved == 0 {
        let ignored: u64 = [r.a, r.b, r.retransmission]
            .iter()
            .map(|s| s.foreign_session + s.foreign_end + s.malformed)
            .sum();
        if ignored > 0 {
            eprintln!(
                "hftnet feed: no message delivered ({why}): {ignored} packets were malformed, of another session than {}, or ends of a session not followed; check --session and the sender",
                r.session.as_ref().map_or_else(
                    || "the first one seen".to_string(),
                    |s| format!("Session({s})")
                )
            );
        } else {
            eprintln!(
                "hftnet feed: nothing received ({why}); is the exchange sending to these addresses?"
            );
        }
        return Ok(ExitCode::from(EXIT_NOTHING));
    }
    let foreign_end: u64 = [r.a, r.b, r.retransmission]
        .iter()
        .map(|s| s.foreign_end)
        .sum();
    if foreign_end > 0 {
        eprintln!(
            "hftnet feed: ignored {foreign_end} end-of-session packets that were not this \
             session's (another exchange, e.g. one of an earlier run still lingering)"
        );
    }
    // Every reason the run is not good is printed; any gives exit 1.
    let mut bad = false;
    if r.lost > 0 {
        bad = true;
        eprintln!(
            "hftnet feed: {} messages lost for good in {} ranges ({})",
            r.lost,
            r.lost_ranges.len() as u64 + r.lost_ranges_not_listed,
            if r.recovery {
                "recovery could not fill them"
            } else {
                "recovery is off"
            }
        );
    }
    if r.unresolved > 0 {
        bad = true;
        eprintln!(
            "hftnet feed: stopped ({why}) with {} messages (sequences {} to {}) neither delivered nor declared lost",
            r.unresolved, r.next_expected, r.highest_seen
        );
    }
    // Was the day whole? An idle timeout before the end of session means
    // the exchange stopped mid-session (a duration asked for, or Ctrl-C, is
    // the user's choice).
    if r.stopped == FeedStop::IdleTimeout && r.end_of_session.is_none() {
        bad = true;
        eprintln!(
            "hftnet feed: session incomplete: nothing arrived for {:?} and no end of session was \
             seen (the exchange stopped or was killed mid-session); {} messages delivered",
            a.idle_timeout, r.delivered
        );
    }
    // Messages numbered after the end of session: the end seen was not
    // this exchange's (another one, lingering, with the same session name).
    let after_end: u64 = [r.a, r.b, r.retransmission]
        .iter()
        .map(|s| s.after_end)
        .sum();
    if after_end > 0 {
        bad = true;
        eprintln!(
            "hftnet feed: {after_end} messages numbered after the end of session arrived: that \
             end was not this exchange's (another exchange with the same session name, e.g. \
             one of an earlier run still lingering?); give each run its own --session"
        );
    }
    // What the books could not take: the same rule, in the same words, as
    // `hftnet replay`.
    for p in r.market.problems() {
        bad = true;
        eprintln!("hftnet feed: {p}");
    }
    if let Some(p) = r.publish.as_ref().filter(|p| p.errors > 0) {
        bad = true;
        eprintln!(
            "hftnet feed: {} of {} market-data records could not be published (first: {}); \
             subscribers see them as missed",
            p.errors,
            p.records,
            p.first_error.as_deref().unwrap_or("unknown")
        );
    }
    if bad {
        return Ok(ExitCode::from(EXIT_LOSS));
    }
    Ok(ExitCode::SUCCESS)
}

/// Opens the `--publish` transport as a publisher (`shm://md` becomes the
/// writer of ring `md`), checking it carries a market-data record.
fn open_publish(uri: &str) -> Result<AnyTransport> {
    let ep = Endpoint::parse(uri)
        .with_context(|| format!("--publish URI {uri}"))?
        .one_way(OneWay::Publish);
    if ep.max_message() < RECORD_LEN {
        bail!(
            "--publish {uri}: its messages hold at most {} bytes, a market-data record is \
             {RECORD_LEN}: give it larger messages",
            ep.max_message()
        );
    }
    ep.open(Role::Client)
        .with_context(|| format!("opening --publish {uri}"))
}
