//! `hftnet exchange`: an ITCH 5.0 feed over MoldUDP64 on two feeds (A and
//! B), with heartbeats, a re-request server, and fault injection — or, with
//! `--write`, a Nasdaq-format file of the generated day.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use clap::Args;
use hftnet_bench::timetable::{Timetable, WaitPolicy, WaitStep};
use hftnet_io::Role;
use hftnet_io::transport::{RxBurst, Transport};
use hftnet_trade::book::BookConfig;
use hftnet_trade::exchange::{
    FaultInjector, Faults, Generator, GeneratorConfig, Publisher, PublisherConfig,
};
use hftnet_trade::market::MarketData;
use hftnet_trade::rng::Rng;
use hftnet_wire::moldudp64::Session;
use serde_json::json;

use super::itchfile::{ItchReader, ItchWriter};
use super::{open_optional, put_market};
use crate::util::{Report, parse_duration, stop_on_signals};

/// MoldUDP64 header (20) + block length (2) + the largest ITCH 5.0 message (50).
const MIN_PAYLOAD: usize = 72;

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
    /// MoldUDP64 session name (up to 10 characters).
    #[arg(long, default_value = "HFTNET")]
    session: String,
    /// Heartbeat after this long without a packet.
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    heartbeat: Duration,
    /// Messages kept for re-requests.
    #[arg(long, default_value_t = 1 << 20)]
    history: usize,
    /// Largest downstream packet in bytes (UDP payload).
    #[arg(long, default_value_t = 1400)]
    max_payload: usize,
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
    /// Print one JSON object instead of `# key: value` lines.
    #[arg(long)]
    json: bool,
}

/// Where messages come from.
enum Source {
    Generated {
        g: Generator,
        flow_limit: Option<u64>,
        buf: [u8; 64],
    },
    File {
        r: Box<ItchReader>,
        limit: Option<u64>,
        read: u64,
    },
}

impl Source {
    fn next(&mut self) -> Result<Option<&[u8]>> {
        match self {
            Self::Generated { g, flow_limit, buf } => {
                if g.in_flow() && flow_limit.is_some_and(|l| g.flow_generated() >= l) {
                    g.finish();
                }
                match g.next_message() {
                    None => Ok(None),
                    Some(m) => {
                        let n = m.emit(buf).context("encoding a generated message")?;
                        Ok(Some(&buf[..n]))
                    }
                }
            }
            Self::File { r, limit, read } => {
                if limit.is_some_and(|l| *read >= l) {
                    return Ok(None);
                }
                *read += 1;
                r.next_record()
            }
        }
    }

    /// Ends a generated day early (its end events still follow).
    fn finish(&mut self) {
        match self {
            Self::Generated { g, .. } => g.finish(),
            Self::File { limit, read, .. } => *limit = Some(*read),
        }
    }
}

pub fn exchange(a: ExchangeArgs) -> Result<ExitCode> {
    if a.write.is_none() && a.feed_a.is_none() && a.feed_b.is_none() {
        bail!("give --feed-a and/or --feed-b to send, or --write FILE to write a file");
    }
    if !(1..=65_536).contains(&a.burst) {
        bail!("--burst {} must be between 1 and 65536", a.burst);
    }
    if a.max_payload < MIN_PAYLOAD {
        bail!(
            "--max-payload {} is too small: a MoldUDP64 packet with the largest ITCH message needs {MIN_PAYLOAD} bytes",
            a.max_payload
        );
    }
    if a.heartbeat < Duration::from_millis(1) {
        bail!(
            "--heartbeat {:?} is too short: use 1ms or more",
            a.heartbeat
        );
    }
    let flow_limit = match (a.messages, a.duration) {
        (Some(n), _) => Some(n),
        (None, Some(_)) => None,
        (None, None) => Some(100_000),
    };
    let mut source = match &a.file {
        Some(p) => Source::File {
            r: Box::new(ItchReader::open(p)?),
            limit: flow_limit,
            read: 0,
        },
        None => Source::Generated {
            g: Generator::new(GeneratorConfig::new(a.seed, a.symbols))?,
            flow_limit,
            buf: [0; 64],
        },
    };
    // The books the stream builds, for comparison with a feed handler's.
    let mut reference = MarketData::new(BookConfig::all_symbols())?;
    if let Some(path) = &a.write {
        let mut w = ItchWriter::create(path)?;
        while let Some(m) = source.next()? {
            reference.handle(m);
            w.write(m)?;
        }
        let records = w.records;
        w.finish()?;
        let mut rep = Report::default();
        rep.put("command", "exchange --write")
            .put("file", path.display().to_string())
            .put("records", records);
        put_market(&mut rep, &reference);
        rep.print(a.json);
        return Ok(ExitCode::SUCCESS);
    }

    let session = Session::new(&a.session).map_err(|_| {
        anyhow::anyhow!(
            "--session {:?}: at most 10 printable ASCII characters",
            a.session
        )
    })?;
    let mut publisher = Publisher::new(PublisherConfig {
        heartbeat_interval_ns: a.heartbeat.as_nanos().max(1) as u64,
        history: a.history,
        max_payload: a.max_payload,
        ..PublisherConfig::new(session)
    })?;
    let fa = Faults {
        loss: a.loss_a,
        duplicate: a.dup_a,
        reorder: a.reorder_a,
    };
    let fb = Faults {
        loss: a.loss_b,
        duplicate: a.dup_b,
        reorder: a.reorder_b,
    };
    let mut inj_a = FaultInjector::new(fa, a.fault_seed).context("feed A faults")?;
    let mut inj_b = FaultInjector::new(fb, a.fault_seed ^ 0x5bd1_e995).context("feed B faults")?;
    let mut ta = open_optional(&a.feed_a, Role::Client, "feed A")?;
    let mut tb = open_optional(&a.feed_b, Role::Client, "feed B")?;
    let mut tr = open_optional(&a.retransmit, Role::Server, "re-request server")?;
    let stop = stop_on_signals()?;
    let mut rng = Rng::new(a.seed ^ 0x0b0e);
    let mut send_errors = 0u64;
    let mut bad_requests = Vec::<String>::new();
    let mut rx = RxBurst::new(16, 64);
    let start = Instant::now();
    let now_ns = || start.elapsed().as_nanos() as u64;
    // The timetable: message n is due at n / rate seconds. After a stall
    // longer than MAX_CATCH_UP the timetable restarts from now (counted),
    // rather than sending everything missed back to back. No timetable at
    // --rate 0: every burst is due at once.
    const MAX_CATCH_UP: Duration = Duration::from_millis(10);
    let mut timetable = Timetable::per_second(a.rate).map(|t| t.with_catch_up(MAX_CATCH_UP));
    let due = |t: &Option<Timetable>, sent: u64| t.as_ref().map_or(0, |t| t.due_ns(sent));
    // Idle: sleep when the next thing is far away, else spin (or poll the
    // re-request socket).
    const IDLE: WaitPolicy = WaitPolicy {
        sleep_above: Duration::from_micros(200),
        wake_early: Duration::from_micros(100),
        max_sleep: Some(Duration::from_millis(1)),
    };
    let mut sent = 0u64;
    let mut error: Option<anyhow::Error> = None;
    let mut ended_at: Option<u64> = None;
    let mut pkts: Vec<Vec<u8>> = Vec::new();
    let mut spare: Vec<Vec<u8>> = Vec::new();

    loop {
        let now = now_ns();
        if ended_at.is_none() {
            if stop.load(Ordering::Relaxed)
                || a.duration.is_some_and(|d| now >= d.as_nanos() as u64)
            {
                source.finish();
            }
            if now >= due(&timetable, sent) {
                if let Some(t) = timetable.as_mut() {
                    t.note_send(sent, now);
                }
                let k = rng.range(1, a.burst);
                let mut collect = |p: &[u8]| {
                    let mut v = spare.pop().unwrap_or_default();
                    v.clear();
                    v.extend_from_slice(p);
                    pkts.push(v);
                };
                for _ in 0..k {
                    let next = match source.next() {
                        Ok(m) => m,
                        Err(e) => {
                            error = Some(e);
                            None
                        }
                    };
                    let published = next.map(|m| {
                        reference.handle(m);
                        publisher.publish(now, m, &mut collect)
                    });
                    match published {
                        Some(Ok(_)) => sent += 1,
                        Some(Err(e)) => {
                            error = Some(anyhow::Error::new(e).context("publishing a message"));
                            publisher.end_session(now, &mut collect);
                            ended_at = Some(now);
                            break;
                        }
                        None => {
                            // The end of the day, or a source error: either
                            // way the session ends properly and re-requests
                            // are still served while lingering.
                            publisher.end_session(now, &mut collect);
                            ended_at = Some(now);
                            break;
                        }
                    }
                }
                publisher.flush(now, &mut collect);
            }
        }
        if publisher.poll_timeout().is_some_and(|t| now >= t) {
            let mut collect = |p: &[u8]| pkts.push(p.to_vec());
            publisher.handle_timeout(now, &mut collect);
        }
        // Send what was produced on both feeds, through the injectors.
        let ending = ended_at.is_some();
        for p in pkts.drain(..) {
            for (t, inj) in [(&mut ta, &mut inj_a), (&mut tb, &mut inj_b)] {
                if let Some(t) = t.as_mut() {
                    let mut send = |b: &[u8]| {
                        if t.send(b, None).is_err() {
                            send_errors += 1;
                        }
                    };
                    inj.process(&p, &mut send);
                    if ending || p.len() <= hftnet_wire::moldudp64::HEADER_LEN {
                        // Heartbeats and the end release held packets.
                        inj.flush(&mut send);
                    }
                }
            }
            spare.push(p);
        }
        // Re-requests.
        let mut served = false;
        if let Some(t) = tr.as_mut() {
            let n = t
                .recv_burst_until(&mut rx, Instant::now())
                .context("receiving re-requests")?;
            for i in 0..n {
                let (req, meta) = rx.get(i);
                served = true;
                let mut replies = Vec::new();
                match publisher.handle_request(now, req, &mut |p: &[u8]| replies.push(p.to_vec())) {
                    Ok(_) => {}
                    Err(e) => {
                        if bad_requests.len() < 10 {
                            bad_requests.push(format!(
                                "{}: {e}",
                                meta.peer.map_or("?".into(), |p| p.to_string())
                            ));
                        }
                    }
                }
                for r in replies {
                    if t.send(&r, meta.peer).is_err() {
                        send_errors += 1;
                    }
                }
            }
        }
        if let Some(end) = ended_at
            && (now >= end + a.linger.as_nanos() as u64
                || stop.load(Ordering::Relaxed) && now > end)
        {
            break;
        }
        // Idle: sleep when the next thing is far away, else spin.
        if !served {
            let next = if ended_at.is_some() {
                now + 1_000_000
            } else {
                due(&timetable, sent)
            };
            match IDLE.step(next.saturating_sub(now_ns())) {
                WaitStep::Sleep(d) => std::thread::sleep(d),
                // Spinning on the re-request socket.
                _ if tr.is_some() => {}
                _ => std::hint::spin_loop(),
            }
        }
    }
    let secs = ended_at.unwrap_or_else(now_ns) as f64 / 1e9;
    let behind_max_ns = timetable.as_ref().map_or(0, Timetable::behind_max_ns);
    let schedule_restarts = timetable.as_ref().map_or(0, Timetable::restarts);
    let st = publisher.stats();
    let mut rep = Report::default();
    rep.put("command", "exchange")
        .put("session", a.session.clone())
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
        .put("messages", st.messages)
        .put("packets", st.packets)
        .put("heartbeats", st.heartbeats)
        .put("seconds", (secs * 1e6).round() / 1e6)
        .put(
            "messages_per_sec",
            (st.messages as f64 / secs.max(1e-9)).round() as u64,
        )
        .put("rate_target", a.rate)
        .put(
            "behind_schedule_max_us",
            (a.rate > 0).then_some(behind_max_ns / 1000),
        )
        .put("schedule_restarts", schedule_restarts)
        .put("send_errors", send_errors)
        .put(
            "faults",
            json!({
                "a": fault_json(inj_a.stats()),
                "b": fault_json(inj_b.stats()),
            }),
        )
        .put(
            "retransmission",
            json!({
                "requests": st.requests,
                "bad_requests": st.bad_requests,
                "packets": st.retransmit_packets,
                "messages": st.retransmitted,
                "refused": bad_requests,
            }),
        );
    put_market(&mut rep, &reference);
    if let Some(e) = &error {
        rep.put("error", format!("{e:#}"));
    }
    rep.print(a.json);
    let achieved = st.messages as f64 / secs.max(1e-9);
    if a.rate > 0 && st.messages > 1000 && achieved < 0.95 * a.rate as f64 {
        eprintln!(
            "hftnet exchange: sent {achieved:.0} messages/s, below the --rate {} asked for (this machine or transport cannot go faster; schedule restarted {schedule_restarts} times)",
            a.rate
        );
    }
    if send_errors > 0 {
        eprintln!(
            "hftnet exchange: {send_errors} packets could not be sent (socket buffer full or no route); receivers will see them as loss"
        );
    }
    if let Some(e) = error {
        eprintln!(
            "hftnet exchange: {e:#}; the session was ended there and the figures above cover what was sent"
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

fn fault_json(s: hftnet_trade::exchange::FaultStats) -> serde_json::Value {
    json!({
        "packets": s.packets, "dropped": s.dropped,
        "duplicated": s.duplicated, "reordered": s.reordered,
    })
}
