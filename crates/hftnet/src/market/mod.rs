//! `hftnet exchange`, `hftnet feed` and `hftnet replay`: the market-data
//! half of the trading path, ITCH 5.0 over MoldUDP64, over any transport;
//! `hftnet trade`: the trader, orders out as OUCH 5.0 over SoupBinTCP.
//! The loops are the library's (`hftnet-apps`, on the sans-IO engine of
//! `hftnet-trade`); these modules only parse the arguments, open the
//! transports the URIs name, call the library and print its reports.

mod exchange;
mod feed;
mod replay;
mod trade;

pub use exchange::{ExchangeArgs, exchange};
pub use feed::{FeedArgs, feed};
pub use replay::{ReplayArgs, replay};
pub use trade::{TradeArgs, trade};

use anyhow::{Context, Result, anyhow, bail};
use hftnet_apps::market::{MarketSummary, TopLevel, TopOfBook};
use hftnet_io::middleware::{DEFAULT_FAULT_SLOTS, FaultConfig, FaultsOn};
use hftnet_io::{AnyTransport, Endpoint, Role};
use hftnet_wire::faults::Faults;
use hftnet_wire::itch50::Price4;
use serde_json::{Value, json};

use crate::util::Report;

/// Runs `$body` with `$io` (a `hftnet_apps::Transports`) given feed A and
/// feed B — `Option<&mut AnyTransport>` each — as their concrete transports,
/// so the app's loop is monomorphised per pair of backends (`dispatch!` on
/// each feed that is present). The re-request transport stays an
/// `AnyTransport`: it is off the per-message path, and dispatching it too
/// would multiply the number of loops compiled by the number of backends.
macro_rules! with_feeds {
    ($a:expr, $b:expr, $io:ident => $body:expr) => {
        match $a {
            Some(a) => hftnet_io::dispatch!(a, a => {
                let $io = $io.feed_a(a);
                with_feeds!(@b $b, $io => $body)
            }),
            None => with_feeds!(@b $b, $io => $body),
        }
    };
    (@b $b:expr, $io:ident => $body:expr) => {
        match $b {
            Some(b) => hftnet_io::dispatch!(b, b => {
                let $io = $io.feed_b(b);
                $body
            }),
            None => $body,
        }
    };
}
use with_feeds;

/// The feed handler's reorder window and buffer, as `--window` and
/// `--buffer-bytes` give them (shared by `hftnet feed` and `hftnet trade`).
#[derive(Debug, clap::Args)]
pub(crate) struct WindowArgs {
    /// Messages buffered ahead of the next expected one (a power of two, at
    /// most 16777216). A handler started more than this many messages into
    /// the session declares the front lost (the stock directory among it)
    /// instead of re-requesting it: raise it to join late. It must also hold
    /// what arrives live while a re-request is answered (at 3M messages/s
    /// over a veth the answer queued behind ~16k messages at times).
    #[arg(long, default_value_t = 1 << 16)]
    window: usize,
    /// Bytes for the messages buffered ahead (e.g. 64M): what arrives live
    /// while a gap is recovered.
    #[arg(long, default_value = "4M", value_parser = crate::util::parse_size)]
    buffer_bytes: usize,
}

impl WindowArgs {
    /// Checked here, so the error names the flags.
    fn apply(&self, cfg: &mut hftnet_apps::feed::FeedHandlerConfig) -> Result<()> {
        use hftnet_trade::feed::{MAX_WINDOW, MIN_BUFFER_BYTES};
        if !self.window.is_power_of_two() || self.window > MAX_WINDOW {
            bail!(
                "--window {}: a power of two from 1 to {MAX_WINDOW} messages (e.g. 1048576 to \
                 join a million messages into the day)",
                self.window
            );
        }
        if self.buffer_bytes < MIN_BUFFER_BYTES || u32::try_from(self.buffer_bytes).is_err() {
            bail!(
                "--buffer-bytes {}: from {MIN_BUFFER_BYTES} bytes to below 4G (e.g. 64M)",
                self.buffer_bytes
            );
        }
        cfg.window = self.window;
        cfg.buffer_bytes = self.buffer_bytes;
        Ok(())
    }
}

/// Opens the transport of an optional URI option, naming it in errors.
fn open_optional(uri: &Option<String>, role: Role, what: &str) -> Result<Option<AnyTransport>> {
    uri.as_ref()
        .map(|u| {
            let ep = Endpoint::parse(u).with_context(|| format!("{what} URI {u}"))?;
            ep.open(role).with_context(|| format!("opening {what} {u}"))
        })
        .transpose()
}

/// Opens an exchange's feed (a client) with `faults` on its sends, drawn
/// from `seed`: the fault middleware, as `loss=`, `dup=` and `reorder=` on
/// the URI would ask for it. `flag` is the suffix of the command-line
/// options (`-a`), named when the URI asks for faults too.
fn open_feed(
    uri: &Option<String>,
    faults: Faults,
    seed: u64,
    what: &str,
    flag: &str,
) -> Result<Option<AnyTransport>> {
    let Some(u) = uri else {
        return Ok(None);
    };
    let mut ep = Endpoint::parse(u).with_context(|| format!("{what} URI {u}"))?;
    faults.validate().map_err(|e| {
        let name = match e.name {
            "duplicate" => "dup",
            n => n,
        };
        anyhow!("--{name}{flag}: {e}")
    })?;
    if !faults.is_none() {
        if ep.layers.faults.is_some() {
            bail!(
                "{what}: give its faults either with --loss{flag}/--dup{flag}/--reorder{flag}                  or in the URI ({u}), not both"
            );
        }
        ep.layers.faults = Some(FaultConfig {
            faults,
            seed,
            on: FaultsOn::Tx,
            slots: DEFAULT_FAULT_SLOTS,
        });
    }
    ep.open(Role::Client)
        .with_context(|| format!("opening {what} {u}"))
        .map(Some)
}

/// What a stream built: counts by type, the stream digest, the books.
fn put_market(rep: &mut Report, m: &MarketSummary) {
    rep.put("counts", json!(m.counts))
        .put("stream_digest", format!("{:016x}", m.stream_digest))
        .put("book", json!(m.book));
}

/// The top of the books as JSON keyed by symbol:
/// `"AAPL": "100@185.2500 x 200@185.2600"`.
fn top_of_book_json(tops: &[TopOfBook]) -> Value {
    let side = |l: Option<TopLevel>| {
        l.map_or("-".to_string(), |l| {
            format!("{}@{}", l.shares, Price4::from_raw(l.price))
        })
    };
    let mut m = serde_json::Map::new();
    for t in tops {
        m.insert(
            t.symbol.clone(),
            format!("{} x {}", side(t.bid), side(t.ask)).into(),
        );
    }
    Value::Object(m)
}
