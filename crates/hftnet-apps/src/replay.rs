//! Replay: a Nasdaq ITCH 5.0 file (plain or gzip) through the books, with
//! counts by type, throughput, invariants and the top of the books.
//!
//! Layer: apps (file I/O around `hftnet_trade::market::MarketData`).
//! Invariants: records are read in place from the reader's buffer, so the
//! loop does not allocate per message; a file that fails part way is not an
//! error of the run but a report with the figures so far and the reason, so
//! a cut download still shows what it held.

use std::path::PathBuf;
use std::time::Instant;

use hftnet_trade::book::{self, BookConfig};
use hftnet_trade::market::MarketData;
use serde::Serialize;

use crate::itch_file::{ItchReadError, ItchReader};
use crate::market::{MarketSummary, TopOfBook, top_of_book};

/// Which file to replay and what to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayConfig {
    /// The ITCH 5.0 file (length-prefixed records), plain or gzip.
    pub file: PathBuf,
    /// The books kept (see [`crate::market::book_config`] for a list of symbols).
    pub book: BookConfig,
    /// Books whose top is reported, by stock locate.
    pub top: usize,
}

/// Why a replay could not start.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// A field of `book` is out of range.
    #[error(transparent)]
    Book(#[from] book::ConfigError),
    /// The file could not be opened.
    #[error(transparent)]
    Open(#[from] ItchReadError),
}

/// What a replay found.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ReplayReport {
    /// The file is gzip-compressed.
    pub gzip: bool,
    /// Bytes of records read (uncompressed, length prefixes included).
    pub bytes: u64,
    /// Messages handled.
    pub messages: u64,
    /// Time taken, seconds.
    pub seconds: f64,
    /// `messages / seconds`, rounded.
    pub messages_per_sec: u64,
    /// Uncompressed megabytes (10⁶ bytes) per second.
    pub mbytes_per_sec: f64,
    /// What the stream built.
    pub market: MarketSummary,
    /// The top of the first books.
    pub top_of_book: Vec<TopOfBook>,
    /// Why reading stopped before the end of the file (the figures cover
    /// the records before it).
    pub error: Option<String>,
}

/// Replays the file of `cfg` through the books.
///
/// # Errors
/// [`ReplayError`] when the book configuration is invalid or the file cannot
/// be opened. A file that turns out bad part way gives a report with
/// [`ReplayReport::error`] set instead.
pub fn replay(cfg: &ReplayConfig) -> Result<ReplayReport, ReplayError> {
    let mut md = MarketData::new(cfg.book.clone())?;
    let mut r = ItchReader::open(&cfg.file)?;
    let start = Instant::now();
    let error = loop {
        match r.next_record() {
            Ok(Some(msg)) => {
                md.handle(msg);
            }
            Ok(None) => break None,
            Err(e) => break Some(crate::error_chain(&e)),
        }
    };
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    let n = md.counts().total();
    Ok(ReplayReport {
        gzip: r.is_gzip(),
        bytes: r.consumed(),
        messages: n,
        seconds: secs,
        messages_per_sec: (n as f64 / secs).round() as u64,
        mbytes_per_sec: r.consumed() as f64 / secs / 1e6,
        top_of_book: top_of_book(md.book(), cfg.top),
        market: MarketSummary::of(&md),
        error,
    })
}
