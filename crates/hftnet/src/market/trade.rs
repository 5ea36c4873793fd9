//! `hftnet trade`: the trader — market data in (feeds A and B, recovery),
//! a strategy and pre-trade risk, orders out as OUCH 5.0 over SoupBinTCP to
//! the exchange's order entry; `hftnet trade kill --state FILE` trips the
//! kill switch of the trader running with that state file. The trader is
//! `hftnet_apps::trader`; this module turns the flags (and `--config`)
//! into its configuration, opens the transports and prints the report.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};
use clap::{Args, Subcommand, ValueEnum};
use hftnet_apps::Transports;
use hftnet_apps::feed::FeedHandlerConfig;
use hftnet_apps::market::book_config;
use hftnet_apps::trader::{
    MIN_HEARTBEAT, TraderAppConfig, TraderError, TraderRun, TraderStop, kill_file_of, run_trader,
    validate,
};
use hftnet_bench::stats::HGRM_MICROSECONDS;
use hftnet_io::Role;
use hftnet_trade::risk::RiskConfig;
use hftnet_trade::strategy::{Maker, MakerConfig, Taker, TakerConfig};
use hftnet_trade::trader::TraderConfig;
use serde_json::json;

use super::{WindowArgs, open_optional, with_feeds};
use crate::util::{Report, parse_duration, stop_on_signals};

/// Exit code when the run ended badly (reconnection failed, state file).
const EXIT_BAD: u8 = 1;
/// Exit code when the exchange did not answer, or sent no market data.
const EXIT_SILENT: u8 = 3;

#[derive(Debug, Args)]
#[command(args_conflicts_with_subcommands = true)]
pub struct TradeArgs {
    #[command(subcommand)]
    cmd: Option<TradeCmd>,
    #[command(flatten)]
    run: RunArgs,
}

#[derive(Debug, Subcommand)]
enum TradeCmd {
    /// Trip the kill switch of the trader running with this state file: it
    /// cancels every open order and refuses new ones (creates STATE.kill).
    Kill {
        /// The running trader's --state file.
        #[arg(long)]
        state: PathBuf,
    },
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum StrategyName {
    /// Hits the bid or lifts the offer when the top moves by --ticks.
    Taker,
    /// Quotes both sides around the best bid and offer.
    Maker,
}

#[derive(Debug, Args)]
struct RunArgs {
    /// Market data, feed A, e.g. udp://198.18.0.1:30001?rx=spin&timestamps=rx
    #[arg(long)]
    md: Option<String>,
    /// Market data, feed B.
    #[arg(long)]
    md_b: Option<String>,
    /// The exchange's re-request server, e.g. udp://198.18.0.2:30003
    #[arg(long)]
    retransmit: Option<String>,
    /// The exchange's order entry, tcp://IP:PORT (SoupBinTCP framing is set).
    #[arg(long)]
    orders: Option<String>,
    /// SoupBinTCP login, USER:PASSWORD (at most 6 and 10 characters).
    #[arg(long)]
    login: Option<String>,
    /// The strategy.
    #[arg(long, value_enum, default_value = "taker")]
    strategy: StrategyName,
    /// The state file: the persisted UserRefNum mark (created if absent).
    #[arg(long)]
    state: Option<PathBuf>,
    /// JSON (or, named *.toml, TOML) file with `symbols`, `risk`,
    /// `ref_block`, `taker`, `maker` (the library's serde configurations);
    /// flags override it.
    #[arg(long)]
    config: Option<PathBuf>,
    /// Symbols traded (comma-separated).
    #[arg(long, value_delimiter = ',')]
    symbols: Vec<String>,
    /// Taker: the move that fires, in ticks.
    #[arg(long)]
    ticks: Option<u32>,
    /// Price units per tick (100 = one cent).
    #[arg(long)]
    tick: Option<u32>,
    /// Shares per order (taker) or per quote (maker).
    #[arg(long)]
    quantity: Option<u32>,
    /// Maker: the quoted spread in ticks.
    #[arg(long)]
    width_ticks: Option<u32>,
    /// Risk: largest order quantity, shares.
    #[arg(long)]
    max_order_qty: Option<u32>,
    /// Risk: largest order notional, dollars.
    #[arg(long)]
    max_notional: Option<u64>,
    /// Risk: largest potential position per symbol, shares.
    #[arg(long)]
    max_position: Option<u64>,
    /// Risk: largest sum of potential positions over symbols, shares.
    #[arg(long)]
    max_total_position: Option<u64>,
    /// Risk: largest open orders.
    #[arg(long)]
    max_open_orders: Option<u32>,
    /// Risk: sustained order rate, per second.
    #[arg(long)]
    orders_per_sec: Option<u32>,
    /// A file whose appearance trips the kill switch (STATE.kill always does).
    #[arg(long)]
    kill_file: Option<PathBuf>,
    /// Stop after this long (default: at the end of the market-data session).
    #[arg(long, value_parser = parse_duration)]
    duration: Option<Duration>,
    /// Stop when no market data arrived for this long.
    #[arg(long, default_value = "10s", value_parser = parse_duration)]
    idle_timeout: Duration,
    /// SoupBinTCP client heartbeat after this long without sending. The
    /// protocol's 1s by default; short (e.g. 100us) keeps the kernel's TCP
    /// send path in the CPU's caches between orders, for a faster first
    /// order after a quiet spell (a 3-byte frame per interval on the wire).
    #[arg(long, default_value = "1s", value_parser = parse_duration)]
    heartbeat: Duration,
    #[command(flatten)]
    window: WindowArgs,
    /// Print one JSON object instead of `# key: value` lines.
    #[arg(long)]
    json: bool,
    /// Write the internal tick-to-trade histogram here (.hgrm, µs).
    #[arg(long)]
    hgrm: Option<PathBuf>,
}

/// What `--config` holds.
#[derive(Debug, Default, serde::Deserialize)]
#[serde(default, deny_unknown_fields)]
struct ConfigFile {
    symbols: Vec<String>,
    risk: Option<RiskConfig>,
    ref_block: Option<u32>,
    taker: Option<TakerConfig>,
    maker: Option<MakerConfig>,
}

pub fn trade(a: TradeArgs) -> Result<ExitCode> {
    match a.cmd {
        Some(TradeCmd::Kill { state }) => {
            let f = kill_file_of(&state);
            std::fs::write(&f, b"")
                .with_context(|| format!("creating the kill file {}", f.display()))?;
            println!(
                "kill switch requested: {} (the trader cancels every open order)",
                f.display()
            );
            Ok(ExitCode::SUCCESS)
        }
        None => run(a.run),
    }
}

fn need<T: Clone>(v: &Option<T>, flag: &str) -> Result<T> {
    v.clone().ok_or_else(|| anyhow!("give {flag}"))
}

fn run(a: RunArgs) -> Result<ExitCode> {
    let orders = need(&a.orders, "--orders tcp://IP:PORT")?;
    let login = need(&a.login, "--login USER:PASSWORD")?;
    let state = need(&a.state, "--state FILE")?;
    if a.md.is_none() && a.md_b.is_none() {
        bail!("give --md (and --md-b for feed B)");
    }
    let (user, pass) = login
        .split_once(':')
        .ok_or_else(|| anyhow!("--login {login:?}: expected USER:PASSWORD"))?;
    for (flag, d) in [
        ("--duration", a.duration),
        ("--idle-timeout", Some(a.idle_timeout)),
        ("--heartbeat", Some(a.heartbeat)),
    ] {
        if d.is_some_and(|d| d.is_zero()) {
            bail!("{flag} must be more than zero");
        }
    }
    let server_timeout = TraderAppConfig::default().server_timeout;
    if a.heartbeat < MIN_HEARTBEAT || a.heartbeat >= server_timeout {
        bail!(
            "--heartbeat {:?}: from {MIN_HEARTBEAT:?} to below {server_timeout:?} (a server \
             silent that long is given up, and the exchange drops a client silent for 15s)",
            a.heartbeat
        );
    }
    let file: ConfigFile = match &a.config {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .with_context(|| format!("reading --config {}", p.display()))?;
            let what = || {
                format!(
                    "--config {}: expected symbols, risk, ref_block, taker, maker",
                    p.display()
                )
            };
            if p.extension().is_some_and(|e| e == "toml") {
                toml::from_str(&text).with_context(what)?
            } else {
                serde_json::from_str(&text).with_context(what)?
            }
        }
        None => ConfigFile::default(),
    };
    let symbols = if a.symbols.is_empty() {
        file.symbols
    } else {
        a.symbols.clone()
    };
    if symbols.is_empty() {
        bail!("give --symbols (or symbols in --config)");
    }
    let mut risk = file.risk.unwrap_or_default();
    if let Some(v) = a.max_order_qty {
        risk.max_order_qty = v;
    }
    if let Some(v) = a.max_notional {
        risk.max_notional_dollars = v;
    }
    if let Some(v) = a.max_position {
        risk.max_position = v;
    }
    if let Some(v) = a.max_total_position {
        risk.max_total_position = v;
    }
    if let Some(v) = a.max_open_orders {
        risk.max_open_orders = v;
    }
    if let Some(v) = a.orders_per_sec {
        risk.orders_per_sec = v;
    }
    let trader = TraderConfig {
        symbols: symbols.clone(),
        risk,
        ref_block: file.ref_block.unwrap_or(TraderConfig::default().ref_block),
    };
    let recovery = a.retransmit.is_some();
    let mut cfg = TraderAppConfig {
        feed: FeedHandlerConfig {
            recovery,
            book: book_config(&symbols).map_err(|e| anyhow!("--symbols: {e}"))?,
            duration: a.duration,
            idle_timeout: a.idle_timeout,
            ..FeedHandlerConfig::default()
        },
        trader,
        orders: orders.clone(),
        username: user.to_string(),
        password: pass.to_string(),
        state: state.clone(),
        kill_file: a.kill_file.clone(),
        heartbeat: a.heartbeat,
        ..TraderAppConfig::default()
    };
    a.window.apply(&mut cfg.feed)?;
    validate(&cfg)?;
    let table = cfg.trader.symbol_table().map_err(|e| anyhow!("{e}"))?;
    let mut taker_cfg = file.taker.unwrap_or_default();
    let mut maker_cfg = file.maker.unwrap_or_default();
    if let Some(v) = a.ticks {
        taker_cfg.ticks = v;
    }
    if let Some(v) = a.tick {
        taker_cfg.tick = v;
        maker_cfg.tick = v;
    }
    if let Some(v) = a.quantity {
        taker_cfg.quantity = v;
        maker_cfg.size = v;
    }
    if let Some(v) = a.width_ticks {
        maker_cfg.width_ticks = v;
    }

    let mut ta = open_optional(&a.md, Role::Server, "feed A (--md)")?;
    let mut tb = open_optional(&a.md_b, Role::Server, "feed B (--md-b)")?;
    let mut tr = open_optional(&a.retransmit, Role::Client, "re-request server")?;
    let stop = stop_on_signals()?;
    let kill = Arc::new(AtomicBool::new(false));
    signal_hook::flag::register(signal_hook::consts::SIGUSR1, kill.clone())
        .context("installing the SIGUSR1 handler")?;
    let io = Transports {
        retransmit: tr.as_mut(),
        ..Transports::new()
    };
    let result: Result<TraderRun, TraderError> = match a.strategy {
        StrategyName::Taker => {
            let s = Taker::new(taker_cfg, &table).map_err(|e| anyhow!("{e}"))?;
            with_feeds!(ta.as_mut(), tb.as_mut(), io => run_trader(&cfg, s, io, &stop, &kill))
        }
        StrategyName::Maker => {
            let s = Maker::new(maker_cfg, &table).map_err(|e| anyhow!("{e}"))?;
            with_feeds!(ta.as_mut(), tb.as_mut(), io => run_trader(&cfg, s, io, &stop, &kill))
        }
    };
    let run = match result {
        Ok(r) => r,
        Err(e @ (TraderError::Connect { .. } | TraderError::LoginTimeout(_))) => {
            eprintln!("hftnet trade: {e}");
            return Ok(ExitCode::from(EXIT_SILENT));
        }
        Err(e) => return Err(e.into()),
    };
    if let Some(p) = &a.hgrm {
        let f = std::fs::File::create(p).with_context(|| format!("creating {}", p.display()))?;
        run.tick_to_trade
            .write_hgrm(std::io::BufWriter::new(f), HGRM_MICROSECONDS)
            .with_context(|| format!("writing {}", p.display()))?;
    }
    let r = &run.report;
    let mut rep = Report::default();
    rep.put("command", "trade")
        .put("md", a.md.clone())
        .put("md_b", a.md_b.clone())
        .put("orders_uri", orders)
        .put("strategy", format!("{:?}", a.strategy).to_lowercase())
        .put("state", state.display().to_string());
    let v = serde_json::to_value(r)?;
    if let Some(o) = v.as_object() {
        for (k, v) in o {
            if k == "risk_refusals" || k == "feed" {
                continue;
            }
            rep.put(k, v.clone());
        }
    }
    let mut refusals = serde_json::Map::new();
    for (k, n) in &r.risk_refusals {
        refusals.insert(k.clone(), json!(n));
    }
    rep.put("risk_refusals", serde_json::Value::Object(refusals));
    rep.put(
        "feed",
        json!({
            "stopped": r.feed.stopped,
            "delivered": r.feed.delivered,
            "lost": r.feed.lost,
            "gaps": r.feed.gaps,
            "requests": r.feed.requests,
            "top_updates": r.feed.top_updates,
        }),
    );
    rep.print(a.json);
    if let Some(e) = &r.error {
        eprintln!("hftnet trade: {e}");
    }
    if r.feed.delivered == 0 && r.stopped == TraderStop::Feed {
        eprintln!(
            "hftnet trade: no market data arrived ({}); is the exchange sending to --md?",
            r.feed.stopped.as_str()
        );
        return Ok(ExitCode::from(EXIT_SILENT));
    }
    match r.stopped {
        TraderStop::ReconnectFailed => {
            eprintln!(
                "hftnet trade: the order session dropped and {} reconnection attempts failed",
                cfg.max_reconnect_attempts
            );
            Ok(ExitCode::from(EXIT_BAD))
        }
        TraderStop::StateWriteFailed | TraderStop::LoginRejected => Ok(ExitCode::from(EXIT_BAD)),
        _ => Ok(ExitCode::SUCCESS),
    }
}
