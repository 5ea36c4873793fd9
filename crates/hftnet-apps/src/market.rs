//! What a market-data stream built, as report figures: message counts by
//! type, the stream digest, book-wide counters and invariants, the top of
//! the books; and the book configuration for a list of symbols.
//!
//! Layer: apps, read from `hftnet_trade::market::MarketData` after a run
//! (never on the hot path: building a summary allocates and walks every
//! book). Digests serialise as 16 hex digits, as the command prints them;
//! prices stay integers in ITCH units (4 implied decimals).

use hftnet_trade::book::{Book, BookConfig, Level, pad_symbol};
use hftnet_trade::market::{MarketData, MessageCounts};
use hftnet_wire::itch50::MessageType;
use serde::Serialize;
use serde::ser::{SerializeMap, Serializer};

/// A symbol that is not one: not 1 to 8 printable ASCII characters.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0:?} is not a symbol (1 to 8 printable ASCII characters, e.g. AAPL)")]
pub struct BadSymbol(pub String);

/// A book configuration keeping the books of `symbols` only (all books
/// when the list is empty).
///
/// # Errors
/// [`BadSymbol`] naming the first symbol that is not one.
pub fn book_config(symbols: &[String]) -> Result<BookConfig, BadSymbol> {
    if symbols.is_empty() {
        return Ok(BookConfig::all_symbols());
    }
    let mut padded = Vec::with_capacity(symbols.len());
    for s in symbols {
        padded.push(pad_symbol(s).ok_or_else(|| BadSymbol(s.clone()))?);
    }
    Ok(BookConfig::selected(padded))
}

/// Serialises a digest as 16 hex digits.
fn hex<S: Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{v:016x}"))
}

/// What a stream built: counts by type, the stream digest, the books.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct MarketSummary {
    /// Messages by type.
    pub counts: CountsSummary,
    /// Digest of every message in order (equal digests: the same stream).
    #[serde(serialize_with = "hex")]
    pub stream_digest: u64,
    /// Book-wide figures.
    pub book: BookSummary,
}

impl MarketSummary {
    /// The summary of `md` now (the books fully checked).
    #[must_use]
    pub fn of(md: &MarketData) -> Self {
        Self::of_checked(md, BookCheck::Full)
    }

    /// The summary of `md` now, the books checked as `check` says.
    #[must_use]
    pub fn of_checked(md: &MarketData, check: BookCheck) -> Self {
        Self {
            counts: CountsSummary::of(md.counts()),
            stream_digest: md.stream_digest(),
            book: BookSummary::of_checked(md.book(), check),
        }
    }

    /// Why the books this stream built are not good, one sentence each
    /// (empty when they are): an invariant broken, orders dropped on a full
    /// order pool, malformed ITCH messages. The one rule `hftnet feed` and
    /// `hftnet replay` both exit 1 on, in the same words.
    #[must_use]
    pub fn problems(&self) -> Vec<String> {
        let mut out = Vec::new();
        if let Some(v) = &self.book.invariants.violation {
            out.push(format!("the books are inconsistent: {v}"));
        }
        if self.book.pool_exhausted > 0 {
            out.push(format!(
                "the books are incomplete: {} orders dropped because the order pool is full \
                 (keep fewer --symbols)",
                self.book.pool_exhausted
            ));
        }
        if self.counts.malformed > 0 {
            out.push(format!(
                "the books are incomplete: {} malformed ITCH messages (too short for their type) \
                 were not applied",
                self.counts.malformed
            ));
        }
        out
    }
}

/// How a summary checks the books' invariants.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum BookCheck {
    /// `Book::check_invariants`: every order's level looked up.
    Full,
    /// `Book::check_invariants_fast`: the same invariants through
    /// fingerprints, one sequential pass over the orders; a mismatch runs
    /// the full check to name it.
    #[default]
    Fast,
    /// Not checked: `invariants.ok` is null.
    Off,
}

impl BookCheck {
    /// The names [`BookCheck::parse`] accepts.
    pub const NAMES: &'static str = "full, fast, off";

    /// From `full`, `fast` or `off`.
    #[must_use]
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "full" => Some(Self::Full),
            "fast" => Some(Self::Fast),
            "off" => Some(Self::Off),
            _ => None,
        }
    }

    /// The name, as [`BookCheck::parse`] takes it.
    #[must_use]
    pub fn name(self) -> &'static str {
        match self {
            Self::Full => "full",
            Self::Fast => "fast",
            Self::Off => "off",
        }
    }
}

/// Messages by type. Serialises as one object: the name of every type seen
/// (in table order) with its count, then `unknown`, `malformed`, `total`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CountsSummary {
    /// `(type name, count)` of every type seen at least once, in table order.
    pub by_type: Vec<(&'static str, u64)>,
    /// Messages of a type ITCH 5.0 does not define.
    pub unknown: u64,
    /// Messages too short for their type.
    pub malformed: u64,
    /// Every message.
    pub total: u64,
}

impl CountsSummary {
    /// The summary of `c`.
    #[must_use]
    pub fn of(c: &MessageCounts) -> Self {
        let mut by_type = Vec::with_capacity(MessageType::COUNT);
        by_type.extend(c.nonzero());
        Self {
            by_type,
            unknown: c.unknown,
            malformed: c.malformed,
            total: c.total(),
        }
    }
}

impl Serialize for CountsSummary {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(self.by_type.len() + 3))?;
        for (name, n) in &self.by_type {
            m.serialize_entry(name, n)?;
        }
        m.serialize_entry("unknown", &self.unknown)?;
        m.serialize_entry("malformed", &self.malformed)?;
        m.serialize_entry("total", &self.total)?;
        m.end()
    }
}

/// Book-wide figures: the digest, live orders, anomaly counters, invariants.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct BookSummary {
    /// Digest of every book (equal digests: the same books).
    #[serde(serialize_with = "hex")]
    pub digest: u64,
    /// Live orders in all books.
    pub live_orders: usize,
    /// Messages naming an order reference not in the book.
    pub unknown_refs: u64,
    /// Executions or cancels of more shares than the order had.
    pub oversized: u64,
    /// Adds of a live order reference.
    pub duplicate_refs: u64,
    /// Messages for books not kept (selected symbols).
    pub filtered: u64,
    /// Messages with zero shares.
    pub zero_shares: u64,
    /// Order references known under another locate.
    pub locate_mismatch: u64,
    /// Locates out of range.
    pub bad_locate: u64,
    /// Unknown trading states.
    pub bad_state: u64,
    /// Locates renamed by a later directory message.
    pub relocated: u64,
    /// Orders dropped because the order pool was full.
    pub pool_exhausted: u64,
    /// Changes of a best bid, best offer or trading state.
    pub top_changes: u64,
    /// The book's own consistency check.
    pub invariants: Invariants,
}

impl BookSummary {
    /// The summary of `book` (runs its full consistency check).
    #[must_use]
    pub fn of(book: &Book) -> Self {
        Self::of_checked(book, BookCheck::Full)
    }

    /// The summary of `book`, checked as `check` says.
    #[must_use]
    pub fn of_checked(book: &Book, check: BookCheck) -> Self {
        let c = book.counters();
        Self {
            digest: book.digest(),
            live_orders: book.live_orders(),
            unknown_refs: c.unknown_ref,
            oversized: c.oversized,
            duplicate_refs: c.duplicate_ref,
            filtered: c.filtered,
            zero_shares: c.zero_shares,
            locate_mismatch: c.locate_mismatch,
            bad_locate: c.bad_locate,
            bad_state: c.bad_state,
            relocated: c.relocated,
            pool_exhausted: c.pool_exhausted,
            top_changes: c.top_changes,
            invariants: Invariants::of_checked(book, check),
        }
    }
}

/// The result of `Book::check_invariants`: `ok` with the crossed and locked
/// books and the number of levels, or not `ok` with the first violation.
/// When the check was skipped ([`BookCheck::Off`]), `ok` serialises as
/// null and nothing else is given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Invariants {
    /// Every invariant holds (false, and `skipped`, when not checked).
    pub ok: bool,
    /// The books were not checked.
    pub skipped: bool,
    /// Books whose best bid is above their best offer (when `ok`).
    pub crossed_books: Option<usize>,
    /// Books whose best bid equals their best offer (when `ok`).
    pub locked_books: Option<usize>,
    /// Price levels, both sides of all books (when `ok`).
    pub levels: Option<usize>,
    /// The first violation found (when not `ok`).
    pub violation: Option<String>,
}

impl Serialize for Invariants {
    fn serialize<S: Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(None)?;
        if self.skipped {
            m.serialize_entry("ok", &())?;
            return m.end();
        }
        m.serialize_entry("ok", &self.ok)?;
        for (k, v) in [
            ("crossed_books", self.crossed_books),
            ("locked_books", self.locked_books),
            ("levels", self.levels),
        ] {
            if let Some(v) = v {
                m.serialize_entry(k, &v)?;
            }
        }
        if let Some(v) = &self.violation {
            m.serialize_entry("violation", v)?;
        }
        m.end()
    }
}

impl Invariants {
    /// Checks `book` fully.
    #[must_use]
    pub fn of(book: &Book) -> Self {
        Self::of_checked(book, BookCheck::Full)
    }

    /// Checks `book` as `check` says.
    #[must_use]
    pub fn of_checked(book: &Book, check: BookCheck) -> Self {
        let result = match check {
            BookCheck::Full => book.check_invariants(),
            BookCheck::Fast => book.check_invariants_fast(),
            BookCheck::Off => {
                return Self {
                    ok: false,
                    skipped: true,
                    crossed_books: None,
                    locked_books: None,
                    levels: None,
                    violation: None,
                };
            }
        };
        match result {
            Ok(r) => Self {
                ok: true,
                skipped: false,
                crossed_books: Some(r.crossed.len()),
                locked_books: Some(r.locked.len()),
                levels: Some(r.levels),
                violation: None,
            },
            Err(e) => Self {
                ok: false,
                skipped: false,
                crossed_books: None,
                locked_books: None,
                levels: None,
                violation: Some(e.to_string()),
            },
        }
    }
}

/// One price level at the top of a book.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct TopLevel {
    /// Price, 4 implied decimals.
    pub price: u32,
    /// Shares at the price.
    pub shares: u64,
}

impl From<Level> for TopLevel {
    fn from(l: Level) -> Self {
        Self {
            price: l.price,
            shares: l.shares,
        }
    }
}

/// The best bid and offer of one book.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct TopOfBook {
    /// The symbol, without padding.
    pub symbol: String,
    /// The stock locate.
    pub locate: u16,
    /// Best bid, if any.
    pub bid: Option<TopLevel>,
    /// Best offer, if any.
    pub ask: Option<TopLevel>,
}

/// The top of up to `limit` books kept that have a symbol, by locate.
#[must_use]
pub fn top_of_book(book: &Book, limit: usize) -> Vec<TopOfBook> {
    let mut out = Vec::with_capacity(limit.min(64));
    for locate in 0..=u16::MAX {
        if out.len() >= limit {
            break;
        }
        let Some(sym) = book.symbol(locate).filter(|_| book.is_active(locate)) else {
            continue;
        };
        let t = book.top(locate);
        out.push(TopOfBook {
            symbol: String::from_utf8_lossy(&sym).trim_end().to_string(),
            locate,
            bid: t.bid.map(TopLevel::from),
            ask: t.ask.map(TopLevel::from),
        });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn symbols_make_a_book_config_or_are_named() {
        assert_eq!(book_config(&[]).unwrap(), BookConfig::all_symbols());
        let c = book_config(&["AAPL".into(), "MSFT".into()]).unwrap();
        assert_eq!(
            c,
            BookConfig::selected([pad_symbol("AAPL").unwrap(), pad_symbol("MSFT").unwrap()])
        );
        let e = book_config(&["AAPL".into(), "TOOLONGSYM".into()]).unwrap_err();
        assert_eq!(e, BadSymbol("TOOLONGSYM".into()));
        assert!(e.to_string().contains("\"TOOLONGSYM\" is not a symbol"));
    }

    #[test]
    fn summaries_serialise_as_the_command_prints_them() {
        use hftnet_trade::exchange::{Generator, GeneratorConfig};
        let mut g = Generator::new(GeneratorConfig::new(3, 4)).unwrap();
        let mut md = MarketData::new(BookConfig::all_symbols()).unwrap();
        let mut buf = [0u8; 64];
        for _ in 0..2000 {
            let n = g.next_message().unwrap().emit(&mut buf).unwrap();
            md.handle(&buf[..n]);
        }
        md.handle(b"?");
        let s = MarketSummary::of(&md);
        let v = serde_json::to_value(&s).unwrap();
        assert_eq!(v["counts"]["total"], 2001);
        assert_eq!(v["counts"]["unknown"], 1);
        assert_eq!(
            v["counts"]["add_order"].as_u64(),
            Some(md.counts().of(MessageType::AddOrder))
        );
        let keys: Vec<&str> = v["counts"]
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(&keys[keys.len() - 3..], ["unknown", "malformed", "total"]);
        assert_eq!(
            v["stream_digest"],
            format!("{:016x}", md.stream_digest()).as_str()
        );
        assert_eq!(
            v["book"]["digest"],
            format!("{:016x}", md.book().digest()).as_str()
        );
        assert_eq!(v["book"]["live_orders"], md.book().live_orders());
        assert_eq!(v["book"]["invariants"]["ok"], true);
        assert!(v["book"]["invariants"].get("violation").is_none());
        let top = top_of_book(md.book(), 3);
        assert_eq!(top.len(), 3);
        for t in &top {
            assert_eq!(
                pad_symbol(&t.symbol).and_then(|_| md.book().symbol(t.locate)),
                pad_symbol(&t.symbol)
            );
            let book_top = md.book().top(t.locate);
            assert_eq!(t.bid, book_top.bid.map(TopLevel::from));
            assert_eq!(t.ask, book_top.ask.map(TopLevel::from));
        }
        assert!(top.iter().any(|t| t.bid.is_some() && t.ask.is_some()));
        assert!(top_of_book(md.book(), 0).is_empty());
    }
}
