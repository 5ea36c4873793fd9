//! The trader against the exchange app over loopback UDP, its orders to
//! a scripted order server: the pieces the trader tests share (included
//! with `#[path]`).

#![allow(dead_code)]

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;
use std::thread;
use std::time::Duration;

use hftnet_apps::Transports;
use hftnet_apps::exchange::{Exchange, ExchangeConfig};
use hftnet_apps::feed::FeedHandlerConfig;
use hftnet_apps::trader::{TraderAppConfig, TraderRun, run_trader};
use hftnet_io::dispatch;
use hftnet_trade::risk::RiskConfig;
use hftnet_trade::strategy::{Maker, MakerConfig, Strategy, Taker, TakerConfig};
use hftnet_trade::trader::TraderConfig;

use super::loopback;

pub const SYMBOLS: [&str; 4] = ["AAPL", "MSFT", "NVDA", "AMZN"];

/// A fresh directory, removed on drop (also when the test fails).
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(name: &str) -> TempDir {
        let dir = std::env::temp_dir().join(format!("hftnet-trader-{}-{name}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// A state file in a fresh directory; keep the guard alive.
pub fn state_path(name: &str) -> (TempDir, PathBuf) {
    let d = TempDir::new(name);
    let state = d.0.join("state");
    (d, state)
}

pub fn loose_risk() -> RiskConfig {
    RiskConfig {
        max_order_qty: 10_000,
        max_notional_dollars: 10_000_000,
        max_position: 1_000_000,
        max_total_position: 4_000_000,
        orders_per_sec: 1_000_000,
        burst: 1_000_000,
        max_open_orders: 1_000,
        ..RiskConfig::default()
    }
}

pub fn config(orders: &str, state: &std::path::Path, risk: RiskConfig) -> TraderAppConfig {
    TraderAppConfig {
        feed: FeedHandlerConfig {
            idle_timeout: Duration::from_secs(5),
            duration: Some(Duration::from_secs(30)),
            ..FeedHandlerConfig::default()
        },
        trader: TraderConfig {
            symbols: SYMBOLS.iter().map(|s| s.to_string()).collect(),
            risk,
            ref_block: 16,
        },
        orders: orders.to_string(),
        username: "trader".into(),
        password: "secret".into(),
        state: state.to_path_buf(),
        ..TraderAppConfig::default()
    }
}

pub fn taker(cfg: &TraderAppConfig) -> Taker {
    let t = TakerConfig {
        ticks: 1,
        cooldown_ns: 0,
        ..TakerConfig::default()
    };
    Taker::new(t, &cfg.trader.symbol_table().unwrap()).unwrap()
}

pub fn maker(cfg: &TraderAppConfig) -> Maker {
    Maker::new(MakerConfig::default(), &cfg.trader.symbol_table().unwrap()).unwrap()
}

/// Runs the exchange (`messages` generated messages) into the trader.
pub fn run<S: Strategy + Send>(
    messages: u64,
    cfg: &TraderAppConfig,
    strategy: S,
    kill: &AtomicBool,
) -> (TraderRun, u64) {
    let (r, sent, _) = run_counting(messages, cfg, strategy, kill, || 0);
    (r, sent)
}

/// [`run`], also returning what `allocs` counted on the trader's thread
/// around `run_trader` (set-up and report included).
pub fn run_counting<S: Strategy + Send>(
    messages: u64,
    cfg: &TraderAppConfig,
    strategy: S,
    kill: &AtomicBool,
    allocs: fn() -> u64,
) -> (TraderRun, u64, u64) {
    let loopback::Ends {
        mut feed_a,
        mut feed_b,
        mut requests,
        mut to_a,
        mut to_b,
        mut server,
    } = loopback::udp_ends("loss=0");
    let stop = AtomicBool::new(false);
    let exchange = ExchangeConfig {
        messages: Some(messages),
        rate: 50_000,
        heartbeat: Duration::from_millis(20),
        linger: Duration::from_millis(300),
        ..ExchangeConfig::default()
    };
    thread::scope(|s| {
        let trader = s.spawn(|| {
            dispatch!(&mut feed_a, a => dispatch!(&mut feed_b, b => {
                let io = Transports::new().feed_a(a).feed_b(b).retransmit(&mut requests);
                let before = allocs();
                let r = run_trader(cfg, strategy, io, &stop, kill);
                (r, allocs() - before)
            }))
        });
        let mut ex = Exchange::new(&exchange).unwrap();
        dispatch!(&mut to_a, a => dispatch!(&mut to_b, b => {
            ex.run(Transports::new().feed_a(a).feed_b(b).retransmit(&mut server), &stop)
                .unwrap()
        }));
        let sent = ex.report().messages;
        let (r, n) = trader.join().unwrap();
        (r.unwrap(), sent, n)
    })
}
