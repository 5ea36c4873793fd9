//! Tick-to-trade across two hosts: the exchange ([`crate::exchange`] with
//! its order entry, [`crate::order_entry`]) on one, the trader
//! ([`crate::trader`], a taker) on the other, market data over a transport
//! of the backend table and orders over kernel TCP — the table `hftnet lab`
//! prints after its ping-pong ladder.
//!
//! Each row is a market-data transport and receive strategy ([`rows_for`]:
//! the ladder's rungs of every transport that carries datagrams, its
//! [`STRATEGIES`] rows). Each slice of a row is one short trading day:
//! the exchange opens its feed and order entry, waits for the trader's
//! login (`wait_logins` 1, so the trader sees the day from its first
//! message), publishes a bounded generated day and ends the session; the
//! trader takes (hits or lifts on every one-tick move of the top of book),
//! so orders happen. Internal tick-to-trade is the trader's (receive stamp
//! of the triggering packet → the kernel's software transmit stamp of the
//! order: the trader's orders URI carries [`TRADER_ORDERS_PARAMS`]), with
//! the same orders to the call and to the return of their send beside it;
//! external the exchange's (send of the triggering packet → receipt of
//! the order); both
//! are HDR histograms merged over the slices of a row, which run
//! interleaved with the other rows' ([`TickToTrade::run_round`]) — and, in
//! `hftnet lab`, with the ping-pong rows of the same transports.
//!
//! Layer: apps, above [`crate::exchange`] and [`crate::trader`]; where the
//! two ends run is the caller's ([`T2tHosts`]: two lab namespaces, or this
//! namespace over loopback).
//!
//! Invariants: every slice is bounded (a bounded day, the trader's idle
//! timeout and duration, the exchange's login wait); a row that cannot run
//! says why in its note and is not run again; the trader's state file of a
//! slice is removed after it.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;
use std::time::Duration;

use hftnet_bench::ladder::rungs_for;
use hftnet_bench::stats::{LatencyStats, Summary};
use hftnet_io::{Endpoint, Role, dispatch};
use hftnet_trade::risk::{PriceBand, RiskConfig};
use hftnet_trade::strategy::{Taker, TakerConfig};
use hftnet_trade::trader::TraderConfig;
use serde::Serialize;

use crate::Transports;
use crate::exchange::{Exchange, ExchangeConfig, ExchangeSource, session_name_for_run};
use crate::feed::FeedHandlerConfig;
use crate::market::book_config;
use crate::order_entry::{Login, OrderEntryConfig};
use crate::trader::{TraderAppConfig, run_trader};

/// The instruments of the generated day (its first eight symbols), all
/// traded.
pub const SYMBOLS: [&str; 8] = [
    "AAPL", "MSFT", "NVDA", "AMZN", "GOOGL", "META", "TSLA", "AVGO",
];
/// The receive strategies a row runs, when its transport offers them
/// (a transport offering none of them runs all its rows): blocking,
/// spinning, and spinning with the kernel's receive stamps (internal
/// tick-to-trade then starts where the kernel stamped the packet, not
/// where the receive returned).
pub const STRATEGIES: [&str; 3] = ["block", "spin", "spin+timestamps"];
/// The parameters of the trader's orders URI: the kernel's software
/// transmit stamp of each order ends internal tick-to-trade (on veth the
/// send call goes on after it, through the exchange side's TCP receive).
pub const TRADER_ORDERS_PARAMS: &str = "timestamps=tx";
/// The trader's heartbeat in the table by default: often enough that its
/// kernel send path stays in the CPU's caches between orders.
pub const WARM_HEARTBEAT: Duration = Duration::from_micros(100);
const USER: &str = "t2t";
const PASSWORD: &str = "lab";
/// How long a slice waits for its exchange to be ready.
const READY_WAIT: Duration = Duration::from_secs(5);

/// One row: market data over a transport and receive strategy, orders over
/// TCP.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct T2tRow {
    /// The market-data transport's scheme, e.g. `udp`.
    pub transport: String,
    /// Its receive strategy (the ladder's row name), e.g. `spin`.
    pub strategy: String,
    /// What the trader opens to receive market data (as a server).
    pub trader_md_uri: String,
    /// What the exchange opens to send it (as a client).
    pub exchange_md_uri: String,
    /// Where the exchange's order entry listens (`tcp://IP:0`: a port of
    /// its own each slice).
    pub orders_uri: String,
    /// The trader's SoupBinTCP heartbeat while it sends nothing else, µs
    /// ([`crate::trader::TraderAppConfig::heartbeat`]): short keeps its
    /// kernel send path warm between orders ([`WARM_HEARTBEAT`] from
    /// [`rows_for`]; [`with_heartbeats`] makes rows of others).
    pub trader_heartbeat_us: u64,
}

/// Each row once per trader heartbeat, in order (row by row, heartbeat by
/// heartbeat): the same market data and strategy with a warm and a cold
/// send path, say, side by side in one run.
#[must_use]
pub fn with_heartbeats(rows: Vec<T2tRow>, heartbeats: &[Duration]) -> Vec<T2tRow> {
    rows.into_iter()
        .flat_map(|r| {
            heartbeats.iter().map(move |h| T2tRow {
                trader_heartbeat_us: u64::try_from(h.as_micros()).unwrap_or(u64::MAX),
                ..r.clone()
            })
        })
        .collect()
}

/// The rows for every scheme of `transports` that carries datagrams (the
/// backend table's word; a byte stream cannot carry MoldUDP64), its
/// [`STRATEGIES`] rows, each on its own port from `md_port`. The trader
/// receives at `trader_ip` on `iface` (each host's own name for the
/// interface between them; `None` on loopback); the order entry listens at
/// `exchange_ip`.
#[must_use]
pub fn rows_for(
    transports: &[String],
    trader_ip: &str,
    exchange_ip: &str,
    iface: Option<&str>,
    md_port: u16,
) -> Vec<T2tRow> {
    let md: Vec<String> = transports
        .iter()
        .filter(|t| hftnet_io::backend::datagrams(t) == Some(true))
        .cloned()
        .collect();
    // The trader is the rungs' server end (it binds or joins), the
    // exchange their client end (it sends to the trader).
    let rungs = rungs_for(&md, trader_ip, iface, md_port);
    let mut rows = Vec::new();
    for t in &md {
        let of: Vec<_> = rungs.iter().filter(|r| &r.transport == t).collect();
        let picked: Vec<_> = if of.iter().any(|r| STRATEGIES.contains(&r.strategy.as_str())) {
            of.into_iter()
                .filter(|r| STRATEGIES.contains(&r.strategy.as_str()))
                .collect()
        } else {
            of
        };
        rows.extend(picked.into_iter().map(|r| T2tRow {
            transport: r.transport.clone(),
            strategy: r.strategy.clone(),
            trader_md_uri: r.server_uri.clone(),
            exchange_md_uri: r.client_uri.clone(),
            orders_uri: format!("tcp://{exchange_ip}:0?rx=spin"),
            trader_heartbeat_us: WARM_HEARTBEAT.as_micros() as u64,
        }));
    }
    rows
}

/// Where the two ends of a slice run.
pub trait T2tHosts {
    /// Starts `f` on a new thread where the exchange lives.
    ///
    /// # Errors
    /// When the thread cannot be placed there.
    fn spawn_exchange(
        &self,
        f: Box<dyn FnOnce() + Send + 'static>,
    ) -> Result<JoinHandle<()>, String>;

    /// Starts `f` on a new thread where the trader lives.
    ///
    /// # Errors
    /// When the thread cannot be placed there.
    fn spawn_trader(&self, f: Box<dyn FnOnce() + Send + 'static>)
    -> Result<JoinHandle<()>, String>;
}

/// How each slice runs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct T2tConfig {
    /// Order-flow messages of each slice's generated day.
    pub messages: u64,
    /// Messages per second the exchange publishes.
    pub rate: u64,
    /// CPU of the trader's thread.
    pub trader_cpu: Option<usize>,
    /// CPU of the exchange's thread.
    pub exchange_cpu: Option<usize>,
    /// Longest a slice may take (the trader's `duration`; the exchange's
    /// login wait is a fraction of it).
    pub slice_limit: Duration,
    /// Where the trader's state files go (one per slice, removed after it).
    pub state_dir: PathBuf,
}

impl Default for T2tConfig {
    /// 100 000 messages at 100 000 messages/s (a second of trading), a
    /// 30 s limit, state files in the temporary directory.
    fn default() -> Self {
        Self {
            messages: 100_000,
            rate: 100_000,
            trader_cpu: None,
            exchange_cpu: None,
            slice_limit: Duration::from_secs(30),
            state_dir: std::env::temp_dir(),
        }
    }
}

/// One row of the result.
#[derive(Debug, Clone, Serialize)]
pub struct T2tResult {
    /// The row.
    pub row: T2tRow,
    /// The parameters of the trader's orders URI ([`TRADER_ORDERS_PARAMS`]).
    pub trader_orders_params: &'static str,
    /// Slices run.
    pub slices: u32,
    /// Internal tick-to-trade (at the trader), ns; absent without samples.
    pub internal_ns: Option<Summary>,
    /// Where it starts: the packet's receive stamp on a `+timestamps` row,
    /// else the clock when the trader started handling it.
    pub internal_start: &'static str,
    /// Where it ends (the trader's `tick_to_trade_internal_end`: the
    /// order's kernel transmit stamp).
    pub internal_end: &'static str,
    /// Its samples (orders sent on a market-data trigger).
    pub internal_samples: u64,
    /// The same orders from the same start to the call of their send (the
    /// application's part: decode, book, strategy, risk, encode), ns;
    /// `internal_ns` minus this is the SoupBinTCP framing and the kernel's
    /// TCP transmit path up to the device.
    pub internal_to_send_call_ns: Option<Summary>,
    /// The same orders from the same start to the return of their send, ns
    /// (on veth the exchange side's TCP receive runs inside the trader's
    /// send call, after the transmit stamp).
    pub internal_to_send_return_ns: Option<Summary>,
    /// Orders sent on a trigger whose transmit stamp never came (not in
    /// `internal_ns`).
    pub internal_stamps_missing: u64,
    /// Orders that left in the segment of a later send (TCP coalesced
    /// them while they waited): in `internal_ns` at that segment's stamp.
    pub internal_stamps_coalesced: u64,
    /// External tick-to-trade (at the exchange), ns; absent without samples.
    pub external_ns: Option<Summary>,
    /// Its samples (orders whose trigger the exchange still knew).
    pub external_samples: u64,
    /// Orders the trader sent (enters, replaces, cancels).
    pub orders: u64,
    /// Orders the trader saw accepted.
    pub accepted: u64,
    /// Orders the trader saw rejected.
    pub rejected: u64,
    /// Enter and replace requests the exchange received.
    pub exchange_received: u64,
    /// Of those, accepted by the exchange.
    pub exchange_accepted: u64,
    /// Of those, rejected by the exchange.
    pub exchange_rejected: u64,
    /// Fills the trader saw.
    pub fills: u64,
    /// Fills the exchange made for the trader.
    pub exchange_fills: u64,
    /// Market-data messages the trader's feed handler delivered.
    pub md_delivered: u64,
    /// Market-data messages it lost.
    pub md_lost: u64,
    /// Market-data packets the exchange could not send.
    pub md_send_errors: u64,
    /// Why the row has no figures, or what went wrong in a slice.
    pub note: Option<String>,
}

/// What a row gathers across its slices.
#[derive(Debug)]
struct Acc {
    internal: LatencyStats,
    internal_end: &'static str,
    to_call: LatencyStats,
    to_return: LatencyStats,
    stamps_missing: u64,
    stamps_coalesced: u64,
    external: LatencyStats,
    slices: u32,
    orders: u64,
    accepted: u64,
    rejected: u64,
    ex_received: u64,
    ex_accepted: u64,
    ex_rejected: u64,
    fills: u64,
    ex_fills: u64,
    delivered: u64,
    lost: u64,
    send_errors: u64,
    note: Option<String>,
    retired: bool,
}

impl Acc {
    fn new() -> Self {
        Self {
            internal: LatencyStats::new(),
            internal_end: "",
            to_call: LatencyStats::new(),
            to_return: LatencyStats::new(),
            stamps_missing: 0,
            stamps_coalesced: 0,
            external: LatencyStats::new(),
            slices: 0,
            orders: 0,
            accepted: 0,
            rejected: 0,
            ex_received: 0,
            ex_accepted: 0,
            ex_rejected: 0,
            fills: 0,
            ex_fills: 0,
            delivered: 0,
            lost: 0,
            send_errors: 0,
            note: None,
            retired: false,
        }
    }
}

/// The tick-to-trade table under way: [`TickToTrade::run_round`] runs one
/// slice of every row, [`TickToTrade::results`] reads the table.
#[derive(Debug)]
pub struct TickToTrade {
    rows: Vec<T2tRow>,
    cfg: T2tConfig,
    acc: Vec<Acc>,
    round: u64,
}

/// A slice's number among every slice of this process (state file names).
static SLICE: AtomicU64 = AtomicU64::new(0);

impl TickToTrade {
    /// A table of `rows`, nothing run yet.
    #[must_use]
    pub fn new(rows: Vec<T2tRow>, cfg: T2tConfig) -> Self {
        let acc = rows.iter().map(|_| Acc::new()).collect();
        Self {
            rows,
            cfg,
            acc,
            round: 0,
        }
    }

    /// The rows.
    #[must_use]
    pub fn rows(&self) -> &[T2tRow] {
        &self.rows
    }

    /// Runs one slice of every row still running, in order, calling
    /// `progress(row)` after each; returns early (the slice under way ends
    /// its day early) when `stop` is set.
    pub fn run_round(
        &mut self,
        hosts: &dyn T2tHosts,
        stop: &Arc<AtomicBool>,
        mut progress: impl FnMut(&T2tRow),
    ) {
        self.round += 1;
        for (row, acc) in self.rows.iter().zip(&mut self.acc) {
            if stop.load(Ordering::Relaxed) {
                return;
            }
            if !acc.retired
                && let Err(why) = run_slice(hosts, row, &self.cfg, self.round, stop, acc)
            {
                acc.note = Some(why);
                acc.retired = true;
            }
            progress(row);
        }
    }

    /// The table so far.
    #[must_use]
    pub fn results(&self) -> Vec<T2tResult> {
        // Where an xdp row's stamps come from: the program's, or the ring's
        // on a kernel that refuses the program its metadata.
        // (Asked once a process: the probe loads the program.)
        static PROGRAM_STAMPS: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        let xdp_program_stamps = !self
            .rows
            .iter()
            .any(|r| r.transport == "xdp" && r.strategy.contains("timestamps"))
            || *PROGRAM_STAMPS
                .get_or_init(|| hftnet_io::xdp::steer::xdp_metadata_supported().unwrap_or(true));
        self.rows
            .iter()
            .zip(&self.acc)
            .map(|(row, a)| T2tResult {
                row: row.clone(),
                trader_orders_params: TRADER_ORDERS_PARAMS,
                slices: a.slices,
                internal_ns: a.internal.summary(),
                internal_samples: a.internal.len(),
                internal_start: if row.strategy.contains("timestamps")
                    && row.transport == "xdp"
                    && !xdp_program_stamps
                {
                    "the packet's receive stamp, taken as the trader read it off the AF_XDP \
                     ring (this kernel refuses the XDP program its metadata, so the program \
                     cannot stamp)"
                } else if row.strategy.contains("timestamps") {
                    "the packet's receive stamp (the kernel's software stamp; on xdp the XDP \
                     program's)"
                } else {
                    "the clock when the trader started handling the packet (after its receive \
                     returned)"
                },
                internal_end: a.internal_end,
                internal_to_send_call_ns: a.to_call.summary(),
                internal_to_send_return_ns: a.to_return.summary(),
                internal_stamps_missing: a.stamps_missing,
                internal_stamps_coalesced: a.stamps_coalesced,
                external_ns: a.external.summary(),
                external_samples: a.external.len(),
                orders: a.orders,
                accepted: a.accepted,
                rejected: a.rejected,
                exchange_received: a.ex_received,
                exchange_accepted: a.ex_accepted,
                exchange_rejected: a.ex_rejected,
                fills: a.fills,
                exchange_fills: a.ex_fills,
                md_delivered: a.delivered,
                md_lost: a.lost,
                md_send_errors: a.send_errors,
                note: a.note.clone(),
            })
            .collect()
    }
}

/// The risk limits of the lab's taker: wide enough that every decision
/// becomes an order (the day's figures are about time, not risk).
fn lab_risk() -> RiskConfig {
    RiskConfig {
        max_order_qty: 10_000,
        max_notional_dollars: 100_000_000,
        max_position: 1_000_000_000,
        max_total_position: 1_000_000_000,
        price_band: PriceBand::Bps(1_000),
        orders_per_sec: 1_000_000,
        burst: 1_000_000,
        max_open_orders: 1_024,
        duplicate_window_ns: 0,
    }
}

/// What the exchange thread of a slice sends back.
type ExchangeOutcome = Result<(crate::exchange::ExchangeReport, LatencyStats), String>;

/// One slice of `row`: a day between an exchange and a taker. An error is
/// what makes the row unable to run (it is retired with it as its note).
fn run_slice(
    hosts: &dyn T2tHosts,
    row: &T2tRow,
    cfg: &T2tConfig,
    round: u64,
    stop: &Arc<AtomicBool>,
    acc: &mut Acc,
) -> Result<(), String> {
    let symbols: Vec<String> = SYMBOLS.iter().map(|s| (*s).to_string()).collect();
    let mut oe = OrderEntryConfig::new(
        &row.orders_uri,
        Login {
            username: USER.into(),
            password: PASSWORD.into(),
        },
    );
    oe.wait_logins = 1;
    oe.wait_timeout = READY_WAIT;
    oe.end_grace = Duration::from_millis(200);
    let ex_cfg = ExchangeConfig {
        source: ExchangeSource::Generated {
            symbols: SYMBOLS.len() as u16,
        },
        seed: round,
        messages: Some(cfg.messages),
        rate: cfg.rate,
        session: session_name_for_run(),
        linger: Duration::from_millis(100),
        order_entry: Some(oe),
        ..ExchangeConfig::default()
    };
    let ex_md = Endpoint::parse(&row.exchange_md_uri).map_err(|e| e.to_string())?;
    let tr_md = Endpoint::parse(&row.trader_md_uri).map_err(|e| e.to_string())?;
    let n = SLICE.fetch_add(1, Ordering::Relaxed);
    let state = cfg
        .state_dir
        .join(format!("hftnet-t2t-{}-{n}.state", std::process::id()));
    let tr_cfg = TraderAppConfig {
        feed: FeedHandlerConfig {
            recovery: false,
            book: book_config(&symbols).map_err(|e| e.to_string())?,
            duration: Some(cfg.slice_limit),
            idle_timeout: Duration::from_secs(2),
            // The trader spins on its CPU: a yield to a busy neighbour
            // would let the feed queue for a time slice.
            yield_when_idle: false,
            ..FeedHandlerConfig::default()
        },
        trader: TraderConfig {
            symbols,
            risk: lab_risk(),
            ref_block: 1_000_000,
        },
        orders: String::new(),
        username: USER.into(),
        password: PASSWORD.into(),
        state: state.clone(),
        heartbeat: Duration::from_micros(row.trader_heartbeat_us),
        ..TraderAppConfig::default()
    };
    let taker = TakerConfig {
        ticks: 1,
        cooldown_ns: 0,
        ..TakerConfig::default()
    };

    // The trader first opens its feed (a sender to a port not yet bound
    // would be refused by ICMP and lose a packet), then waits for the
    // exchange's order-entry address, then trades until the session ends.
    let (md_tx, md_rx) = mpsc::channel::<Result<(), String>>();
    let (addr_tx, addr_rx) = mpsc::channel::<SocketAddr>();
    let (tr_tx, tr_rx) = mpsc::channel();
    let cpu = cfg.trader_cpu;
    let stop3 = stop.clone();
    let trader = hosts.spawn_trader(Box::new(move || {
        if let Some(c) = cpu {
            let _ = hftnet_sys::sched::pin_thread_to_cpu(c);
        }
        let mut t = match tr_md.open(Role::Server) {
            Ok(t) => {
                let _ = md_tx.send(Ok(()));
                t
            }
            Err(e) => {
                let _ = md_tx.send(Err(format!("trader feed {e}")));
                return;
            }
        };
        let Ok(addr) = addr_rx.recv() else {
            return;
        };
        let out = (|| {
            let cfg = TraderAppConfig {
                orders: format!("tcp://{addr}?{TRADER_ORDERS_PARAMS}"),
                ..tr_cfg
            };
            let table = cfg.trader.symbol_table().map_err(|e| e.to_string())?;
            let s = Taker::new(taker, &table).map_err(|e| e.to_string())?;
            let kill = AtomicBool::new(false);
            dispatch!(&mut t, a => {
                run_trader(&cfg, s, Transports::new().feed_a(a), &stop3, &kill)
            })
            .map_err(|e| format!("trader: {e}"))
        })();
        let _ = tr_tx.send(out);
    }))?;
    match md_rx.recv_timeout(READY_WAIT) {
        Ok(Ok(())) => {}
        Ok(Err(e)) => {
            let _ = trader.join();
            return Err(e);
        }
        Err(_) => {
            drop(addr_tx);
            let _ = trader.join();
            return Err(format!(
                "the trader's feed did not open within {READY_WAIT:?}"
            ));
        }
    }

    // The exchange: feed and order entry open, then the day.
    let ex_stop = Arc::new(AtomicBool::new(false));
    let (ready_tx, ready_rx) = mpsc::channel::<Result<SocketAddr, String>>();
    let (done_tx, done_rx) = mpsc::channel::<ExchangeOutcome>();
    let stop2 = ex_stop.clone();
    let cpu = cfg.exchange_cpu;
    let exchange = hosts.spawn_exchange(Box::new(move || {
        if let Some(c) = cpu {
            let _ = hftnet_sys::sched::pin_thread_to_cpu(c);
        }
        let opened = ex_md
            .open(Role::Client)
            .map_err(|e| format!("exchange feed {e}"))
            .and_then(|t| {
                let ex = Exchange::new(&ex_cfg).map_err(|e| format!("exchange: {e}"))?;
                let addr = ex
                    .order_entry_addr()
                    .ok_or_else(|| "exchange: the order entry has no address".to_string())?;
                Ok((t, ex, addr))
            });
        let (mut t, mut ex) = match opened {
            Ok((t, ex, addr)) => {
                let _ = ready_tx.send(Ok(addr));
                (t, ex)
            }
            Err(e) => {
                let _ = ready_tx.send(Err(e));
                return;
            }
        };
        let r = dispatch!(&mut t, a => ex.run(Transports::new().feed_a(a), &stop2));
        let out = match r {
            Ok(()) => Ok((ex.report(), ex.tick_to_trade().cloned().unwrap_or_default())),
            Err(e) => Err(format!("exchange: {e}")),
        };
        let _ = done_tx.send(out);
    }));
    let exchange = match exchange {
        Ok(h) => h,
        Err(e) => {
            drop(addr_tx);
            let _ = trader.join();
            return Err(e);
        }
    };
    let stop_both = |ex: JoinHandle<()>, tr: JoinHandle<()>| {
        ex_stop.store(true, Ordering::Relaxed);
        let _ = ex.join();
        let _ = tr.join();
    };
    match ready_rx.recv_timeout(READY_WAIT) {
        Ok(Ok(a)) => {
            let _ = addr_tx.send(a);
        }
        Ok(Err(e)) => {
            drop(addr_tx);
            stop_both(exchange, trader);
            return Err(e);
        }
        Err(_) => {
            drop(addr_tx);
            stop_both(exchange, trader);
            return Err(format!("the exchange was not ready within {READY_WAIT:?}"));
        }
    }
    let _ = trader.join();
    let tr = tr_rx
        .try_recv()
        .unwrap_or_else(|_| Err("the trader thread panicked".into()));
    // The trader is gone: the exchange ends its day (at once if the
    // trader never logged in).
    if tr.is_err() {
        ex_stop.store(true, Ordering::Relaxed);
    }
    let _ = exchange.join();
    let _ = std::fs::remove_file(&state);
    let _ = std::fs::remove_file(crate::trader::kill_file_of(&state));
    let ex = done_rx
        .try_recv()
        .unwrap_or_else(|_| Err("the exchange thread panicked".into()));
    let run = tr?;
    let (ex_report, external) = ex?;
    let r = &run.report;
    acc.slices += 1;
    acc.internal.merge(&run.tick_to_trade);
    acc.to_call.merge(&run.tick_to_send_call);
    acc.to_return.merge(&run.tick_to_send_return);
    acc.internal_end = r.tick_to_trade_internal_end;
    acc.stamps_missing += r.tx_stamps.missing + r.tx_stamps.overflow;
    acc.stamps_coalesced += r.tx_stamps.coalesced;
    acc.external.merge(&external);
    acc.orders += r.orders.sent;
    acc.accepted += r.orders.accepted;
    acc.rejected += r.orders.rejected;
    acc.fills += r.orders.executions;
    acc.delivered += r.feed.delivered;
    acc.lost += r.feed.lost;
    acc.send_errors += ex_report.send_errors;
    if let Some(oe) = &ex_report.order_entry {
        acc.ex_received += oe.totals.received;
        acc.ex_accepted += oe.totals.accepted;
        acc.ex_rejected += oe.totals.rejected;
        acc.ex_fills += oe.totals.executions;
    }
    if let Some(e) = r.error.as_ref().or(ex_report.error.as_ref()) {
        acc.note = Some(e.clone());
    } else if r.feed.delivered == 0 {
        return Err("no market data reached the trader".into());
    }
    Ok(())
}

/// The table as fixed-width text (tick-to-trade in µs; `call p50`: the
/// internal figure's start to the call of the order's send, the
/// application's part of it; `int`: to the order's transmit stamp; `ret
/// p50`: to the return of its send).
#[must_use]
pub fn table(results: &[T2tResult]) -> String {
    let mut s = format!(
        "{:<8} {:<15} {:>7} {:>7} {:>7} {:>6} | {:>9} {:>9} {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9}\n",
        "md",
        "strategy",
        "hb µs",
        "orders",
        "accept",
        "fills",
        "call p50",
        "int p50",
        "int p99",
        "int max",
        "ret p50",
        "ext p50",
        "ext p99",
        "ext max"
    );
    let us = |x: Option<u64>| x.map_or("-".to_string(), |ns| format!("{:.2}", ns as f64 / 1e3));
    for r in results {
        let (i, e) = (r.internal_ns, r.external_ns);
        if r.slices == 0 {
            s.push_str(&format!(
                "{:<8} {:<15} (no figures)\n",
                r.row.transport, r.row.strategy
            ));
            continue;
        }
        s.push_str(&format!(
            "{:<8} {:<15} {:>7} {:>7} {:>7} {:>6} | {:>9} {:>9} {:>9} {:>9} {:>9} | {:>9} {:>9} {:>9}\n",
            r.row.transport,
            r.row.strategy,
            r.row.trader_heartbeat_us,
            r.orders,
            r.accepted,
            r.fills,
            us(r.internal_to_send_call_ns.map(|x| x.p50)),
            us(i.map(|x| x.p50)),
            us(i.map(|x| x.p99)),
            us(i.map(|x| x.max)),
            us(r.internal_to_send_return_ns.map(|x| x.p50)),
            us(e.map(|x| x.p50)),
            us(e.map(|x| x.p99)),
            us(e.map(|x| x.max)),
        ));
    }
    let notes: Vec<String> = results
        .iter()
        .filter_map(|r| {
            r.note
                .as_ref()
                .map(|n| format!("  {}/{}: {n}", r.row.transport, r.row.strategy))
        })
        .collect();
    if !notes.is_empty() {
        s.push_str("notes:\n");
        s.push_str(&notes.join("\n"));
        s.push('\n');
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_row_runs_once_per_heartbeat_side_by_side() {
        let t = vec!["udp".to_string()];
        let rows = rows_for(&t, "198.18.0.1", "198.18.0.2", Some("veth0"), 31000);
        assert!(rows.iter().all(|r| r.trader_heartbeat_us == 100));
        let hb = [Duration::from_micros(100), Duration::from_secs(1)];
        let both = with_heartbeats(rows.clone(), &hb);
        assert_eq!(both.len(), 2 * rows.len());
        for (k, r) in both.iter().enumerate() {
            let base = &rows[k / 2];
            assert_eq!(r.trader_md_uri, base.trader_md_uri);
            assert_eq!(r.strategy, base.strategy);
            assert_eq!(r.trader_heartbeat_us, [100, 1_000_000][k % 2]);
        }
    }

    #[test]
    fn rows_are_the_strategy_rows_of_the_datagram_transports() {
        // udp's spin+timestamps row too: the kernel stamps the packets.
        let t: Vec<String> = ["udp", "tcp", "mcast"]
            .iter()
            .map(|s| s.to_string())
            .collect();
        let rows = rows_for(&t, "198.18.0.1", "198.18.0.2", Some("veth0"), 31000);
        let names: Vec<String> = rows
            .iter()
            .map(|r| format!("{}/{}", r.transport, r.strategy))
            .collect();
        assert_eq!(
            names,
            [
                "udp/block",
                "udp/spin",
                "udp/spin+timestamps",
                "mcast/block",
                "mcast/spin"
            ]
        );
        assert_eq!(
            rows[2].trader_md_uri,
            "udp://198.18.0.1:31006?rx=spin&timestamps=rx,tx"
        );
        // The trader receives at its own address; orders go to the exchange.
        assert_eq!(rows[1].trader_md_uri, "udp://198.18.0.1:31001?rx=spin");
        assert_eq!(rows[1].exchange_md_uri, "udp://198.18.0.1:31001?rx=spin");
        assert_eq!(rows[1].orders_uri, "tcp://198.18.0.2:0?rx=spin");
        for r in &rows {
            Endpoint::parse(&r.trader_md_uri).unwrap();
            Endpoint::parse(&r.exchange_md_uri).unwrap();
        }
    }

    #[test]
    fn only_the_strategy_rows_a_transport_offers() {
        let rows = rows_for(&["uring".into()], "127.0.0.1", "127.0.0.1", None, 31000);
        let names: Vec<&str> = rows.iter().map(|r| r.strategy.as_str()).collect();
        assert_eq!(names, ["spin"]);
        assert!(rows_for(&["tcp".into()], "127.0.0.1", "127.0.0.1", None, 31000).is_empty());
    }
}
