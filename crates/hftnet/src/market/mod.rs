//! `hftnet exchange`, `hftnet feed` and `hftnet replay`: the market-data
//! half of the trading path, ITCH 5.0 over MoldUDP64, driven over any
//! transport. The protocol logic is the sans-IO `hftnet-trade` crate; this
//! module only moves bytes between it, the transports and files.

mod exchange;
mod feed;
mod itchfile;
mod replay;

pub use exchange::{ExchangeArgs, exchange};
pub use feed::{FeedArgs, feed};
pub use replay::{ReplayArgs, replay};

use anyhow::{Context, Result, bail};
use hftnet_io::{AnyTransport, Endpoint, Role};
use hftnet_trade::book::{Book, BookConfig, pad_symbol};
use hftnet_trade::market::{MarketData, MessageCounts};

use crate::util::Report;

/// Opens the transport of an optional URI option, naming it in errors.
fn open_optional(uri: &Option<String>, role: Role, what: &str) -> Result<Option<AnyTransport>> {
    uri.as_ref()
        .map(|u| {
            let ep = Endpoint::parse(u).with_context(|| format!("{what} URI {u}"))?;
            ep.open(role).with_context(|| format!("opening {what} {u}"))
        })
        .transpose()
}

/// What a stream built: counts by type, the stream digest, the books.
fn put_market(rep: &mut Report, md: &MarketData) {
    rep.put("counts", counts_json(md.counts()))
        .put("stream_digest", format!("{:016x}", md.stream_digest()))
        .put("book", book_json(md.book()));
}
use hftnet_wire::itch50::Price4;
use serde_json::{Value, json};

/// A book configuration for the symbols named on the command line (all when
/// none).
fn book_config(symbols: &[String]) -> Result<BookConfig> {
    if symbols.is_empty() {
        return Ok(BookConfig::all_symbols());
    }
    let mut padded = Vec::new();
    for s in symbols {
        match pad_symbol(s) {
            Some(p) => padded.push(p),
            None => bail!(
                "--symbols: {s:?} is not a symbol (1 to 8 printable ASCII characters, e.g. AAPL)"
            ),
        }
    }
    Ok(BookConfig::selected(padded))
}

/// Message counts by type, as JSON.
fn counts_json(c: &MessageCounts) -> Value {
    let mut m = serde_json::Map::new();
    for (name, n) in c.nonzero() {
        m.insert(name.into(), n.into());
    }
    m.insert("unknown".into(), c.unknown.into());
    m.insert("malformed".into(), c.malformed.into());
    m.insert("total".into(), c.total().into());
    Value::Object(m)
}

fn symbol_text(s: &[u8; 8]) -> String {
    String::from_utf8_lossy(s).trim_end().to_string()
}

/// Top of book of up to `limit` books kept (those with a symbol, by locate), as
/// JSON keyed by symbol: `"AAPL": "100@185.2500 x 200@185.2600"`.
fn top_of_book_json(book: &Book, limit: usize) -> Value {
    let mut m = serde_json::Map::new();
    for locate in 0..=u16::MAX {
        if m.len() >= limit {
            break;
        }
        let Some(sym) = book.symbol(locate).filter(|_| book.is_active(locate)) else {
            continue;
        };
        let t = book.top(locate);
        let side = |l: Option<hftnet_trade::book::Level>| {
            l.map_or("-".to_string(), |l| {
                format!("{}@{}", l.shares, Price4::from_raw(l.price))
            })
        };
        m.insert(
            symbol_text(&sym),
            format!("{} x {}", side(t.bid), side(t.ask)).into(),
        );
    }
    Value::Object(m)
}

/// Book-wide figures and invariants, as JSON.
fn book_json(book: &Book) -> Value {
    let c = book.counters();
    let inv = match book.check_invariants() {
        Ok(r) => json!({
            "ok": true, "crossed_books": r.crossed.len(), "locked_books": r.locked.len(),
            "levels": r.levels,
        }),
        Err(e) => json!({ "ok": false, "violation": e.to_string() }),
    };
    json!({
        "digest": format!("{:016x}", book.digest()),
        "live_orders": book.live_orders(),
        "unknown_refs": c.unknown_ref,
        "oversized": c.oversized,
        "duplicate_refs": c.duplicate_ref,
        "filtered": c.filtered,
        "zero_shares": c.zero_shares,
        "locate_mismatch": c.locate_mismatch,
        "bad_locate": c.bad_locate,
        "bad_state": c.bad_state,
        "relocated": c.relocated,
        "pool_exhausted": c.pool_exhausted,
        "top_changes": c.top_changes,
        "invariants": inv,
    })
}
