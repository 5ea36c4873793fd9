//! `hftnet feed`: receive feeds A and B over any transport, arbitrate,
//! recover gaps by re-request, build the books, report every counter.

use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::Result;
use clap::Args;
use hftnet_bench::stats::LatencyStats;
use hftnet_io::transport::{RxBurst, Transport};
use hftnet_io::{AnyTransport, Role};
use hftnet_trade::feed::{Deliver, FeedConfig, FeedHandler, FeedId, SourceCounters, Start};
use hftnet_trade::market::MarketData;
use hftnet_wire::moldudp64::{HEADER_LEN, Request, Session};
use serde_json::json;

use super::{book_config, open_optional, put_market, top_of_book_json};
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
    /// Pin the receiving thread to this CPU.
    #[arg(long)]
    cpu: Option<usize>,
    /// Print one JSON object instead of `# key: value` lines.
    #[arg(long)]
    json: bool,
}

/// The consumer: books, plus the loss reports.
struct Consumer {
    market: MarketData,
    /// Top-of-book changes handed to the strategy hook.
    top_updates: u64,
    lost: Vec<(u64, u64)>,
    ended: Option<u64>,
}

impl Deliver for Consumer {
    fn message(&mut self, _sequence: u64, message: &[u8]) {
        let n = &mut self.top_updates;
        self.market.handle_with(message, &mut |_| *n += 1);
    }

    fn lost(&mut self, first: u64, count: u64) {
        // The first ranges are listed; the rest only counted.
        if self.lost.len() < 64 {
            self.lost.push((first, count));
        }
    }

    fn end_of_session(&mut self, sequence: u64) {
        self.ended = Some(sequence);
    }
}

pub fn feed(a: FeedArgs) -> Result<ExitCode> {
    if a.feed_a.is_none() && a.feed_b.is_none() {
        anyhow::bail!("give --feed-a and/or --feed-b");
    }
    let recovery = !a.no_recovery && a.retransmit.is_some();
    if !a.no_recovery && a.retransmit.is_none() {
        eprintln!(
            "hftnet feed: no --retransmit server given: gaps both feeds miss cannot be recovered and will be reported lost"
        );
    }
    let session = a
        .session
        .as_deref()
        .map(|s| {
            Session::new(s).map_err(|_| {
                anyhow::anyhow!("--session {s:?}: at most 10 printable ASCII characters")
            })
        })
        .transpose()?;
    let cfg = FeedConfig {
        session,
        start: if a.join {
            Start::FirstSeen
        } else {
            Start::Sequence(1)
        },
        gap_wait_ns: a.gap_wait.as_nanos() as u64,
        recovery,
        request_timeout_ns: a.request_timeout.as_nanos().max(1) as u64,
        ..FeedConfig::default()
    };
    let mut handler = FeedHandler::new(cfg)?;
    let mut consumer = Consumer {
        market: MarketData::new(book_config(&a.symbols)?)?,
        top_updates: 0,
        lost: Vec::new(),
        ended: None,
    };
    let placement = place(choose_cpu(a.cpu, None)?, None, false)?;
    let mut sources: Vec<(FeedId, AnyTransport)> = Vec::new();
    for (id, uri, role, what) in [
        (FeedId::A, &a.feed_a, Role::Server, "feed A"),
        (FeedId::B, &a.feed_b, Role::Server, "feed B"),
        (
            FeedId::Retransmission,
            &a.retransmit,
            Role::Client,
            "re-request server",
        ),
    ] {
        if let Some(t) = open_optional(uri, role, what)? {
            sources.push((id, t));
        }
    }
    let stop = stop_on_signals()?;
    let mut rx = RxBurst::new(32, 65_536);
    let mut req = [0u8; HEADER_LEN];
    let mut per_packet = LatencyStats::new();
    let start = Instant::now();
    let now_ns = || start.elapsed().as_nanos() as u64;
    let mut last_rx = Instant::now();
    let mut first_rx: Option<Instant> = None;
    let mut recv_errors = 0u64;
    let mut send_errors = 0u64;
    let mut empty_rounds = 0u32;
    let why = loop {
        let mut got = 0;
        for (id, t) in sources.iter_mut() {
            let n = match t.recv_burst_until(&mut rx, Instant::now()) {
                Ok(n) => n,
                Err(_) => {
                    recv_errors += 1;
                    0
                }
            };
            for i in 0..n {
                let (bytes, _) = rx.get(i);
                let t0 = Instant::now();
                handler.handle_packet(*id, now_ns(), bytes, &mut consumer);
                per_packet.record(t0.elapsed().as_nanos() as u64);
            }
            got += n;
        }
        let now = now_ns();
        if got > 0 {
            last_rx = Instant::now();
            first_rx.get_or_insert(last_rx);
            empty_rounds = 0;
        } else {
            empty_rounds = empty_rounds.saturating_add(1);
        }
        if handler.poll_timeout().is_some_and(|t| now >= t) {
            handler.handle_timeout(now, &mut consumer);
        }
        while let Some(r) = handler.poll_request(now) {
            r.emit(&mut Request::new_unchecked(&mut req[..]));
            if let Some((_, t)) = sources
                .iter_mut()
                .find(|(id, _)| *id == FeedId::Retransmission)
                && t.send(&req, None).is_err()
            {
                send_errors += 1;
            }
        }
        if consumer.ended.is_some() {
            break "end of session";
        }
        if stop.load(Ordering::Relaxed) {
            break "interrupted";
        }
        if a.duration.is_some_and(|d| start.elapsed() >= d) {
            break "duration reached";
        }
        if last_rx.elapsed() >= a.idle_timeout {
            break "idle timeout";
        }
        if empty_rounds > 10_000 {
            // Nothing for a while: let the other processes of this CPU run.
            std::thread::yield_now();
        }
    };
    let c = handler.counters();
    let mut rep = Report::default();
    rep.put("command", "feed")
        .put("stopped", why)
        .put("feed_a", a.feed_a.clone())
        .put("feed_b", a.feed_b.clone())
        .put("retransmit", a.retransmit.clone())
        .put("recovery", recovery);
    for (k, v) in placement {
        rep.put(&k, v);
    }
    rep.put(
        "seconds",
        first_rx.map_or(0.0, |f| {
            (last_rx.saturating_duration_since(f).as_secs_f64() * 1e3).round() / 1e3
        }),
    )
    .put("delivered", c.delivered)
    .put("lost", c.lost)
    .put(
        "lost_ranges",
        consumer
            .lost
            .iter()
            .map(|(f, n)| format!("{f}+{n}"))
            .collect::<Vec<_>>(),
    )
    .put(
        "lost_ranges_not_listed",
        c.loss_reports.saturating_sub(consumer.lost.len() as u64),
    )
    .put("gaps", c.gaps)
    .put("overflows", c.overflows)
    .put("requests", c.requests)
    .put("requested_messages", c.requested_messages)
    .put("buffered_high_water", c.buffered_high_water)
    .put("next_expected", c.next_expected)
    .put("highest_seen", c.horizon.saturating_sub(1))
    .put("unresolved", c.horizon.saturating_sub(c.next_expected))
    .put("buffered", c.buffered)
    .put("end_of_session", consumer.ended)
    .put("top_updates", consumer.top_updates)
    .put("recv_errors", recv_errors)
    .put("send_errors", send_errors)
    .put("a", source_json(&c.a))
    .put("b", source_json(&c.b))
    .put("retransmission", source_json(&c.retransmission));
    if let Some(s) = per_packet.summary() {
        rep.put(
            "handle_packet_ns",
            json!({"p50": s.p50, "p99": s.p99, "p99_9": s.p99_9, "max": s.max}),
        );
    }
    put_market(&mut rep, &consumer.market);
    rep.put(
        "top_of_book",
        top_of_book_json(consumer.market.book(), a.top),
    );
    rep.print(a.json);
    let unresolved = c.horizon.saturating_sub(c.next_expected);
    if c.delivered == 0 && c.lost == 0 && unresolved == 0 {
        let ignored: u64 = [c.a, c.b, c.retransmission]
            .iter()
            .map(|s| s.foreign_session + s.malformed)
            .sum();
        if ignored > 0 {
            eprintln!(
                "hftnet feed: no message delivered ({why}): {ignored} packets were malformed or of another session than {}; check --session and the sender",
                handler
                    .session()
                    .map_or_else(|| "the first one seen".to_string(), |s| format!("{s:?}"))
            );
        } else {
            eprintln!(
                "hftnet feed: nothing received ({why}); is the exchange sending to these addresses?"
            );
        }
        return Ok(ExitCode::from(EXIT_NOTHING));
    }
    if c.lost > 0 || unresolved > 0 {
        if c.lost > 0 {
            eprintln!(
                "hftnet feed: {} messages lost for good in {} ranges ({})",
                c.lost,
                c.loss_reports,
                if recovery {
                    "recovery could not fill them"
                } else {
                    "recovery is off"
                }
            );
        }
        if unresolved > 0 {
            eprintln!(
                "hftnet feed: stopped ({why}) with {unresolved} messages (sequences {} to {}) neither delivered nor declared lost",
                c.next_expected,
                c.horizon - 1
            );
        }
        return Ok(ExitCode::from(EXIT_LOSS));
    }
    Ok(ExitCode::SUCCESS)
}

fn source_json(s: &SourceCounters) -> serde_json::Value {
    json!({
        "packets": s.packets, "messages": s.messages, "heartbeats": s.heartbeats,
        "gaps": s.gaps, "recovered": s.recovered, "duplicates": s.duplicates,
        "late": s.late, "malformed": s.malformed, "foreign_session": s.foreign_session,
        "before_start": s.before_start, "after_end": s.after_end,
    })
}
