//! `hftnet replay FILE`: parse a Nasdaq ITCH 5.0 file, build the books,
//! report counts, throughput, invariants and the final top of book.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Result;
use clap::Args;
use hftnet_trade::market::MarketData;

use super::itchfile::ItchReader;
use super::{book_config, put_market, top_of_book_json};
use crate::util::Report;

#[derive(Debug, Args)]
pub struct ReplayArgs {
    /// Nasdaq ITCH 5.0 file (length-prefixed records), plain or gzip.
    file: PathBuf,
    /// Keep books only for these symbols (comma-separated); default all.
    #[arg(long, value_delimiter = ',')]
    symbols: Vec<String>,
    /// Books printed at the end (by stock locate).
    #[arg(long, default_value_t = 20)]
    top: usize,
    /// Print one JSON object instead of `# key: value` lines.
    #[arg(long)]
    json: bool,
}

pub fn replay(a: ReplayArgs) -> Result<ExitCode> {
    let cfg = book_config(&a.symbols)?;
    let mut md = MarketData::new(cfg)?;
    let mut r = ItchReader::open(&a.file)?;
    let start = Instant::now();
    let mut error = None;
    loop {
        match r.next_record() {
            Ok(Some(msg)) => {
                md.handle(msg);
            }
            Ok(None) => break,
            Err(e) => {
                error = Some(e);
                break;
            }
        }
    }
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    let n = md.counts().total();
    let mut rep = Report::default();
    rep.put("command", "replay")
        .put("file", a.file.display().to_string())
        .put("gzip", r.gzip)
        .put("bytes", r.consumed)
        .put("messages", n)
        .put("seconds", (secs * 1e6).round() / 1e6)
        .put("messages_per_sec", (n as f64 / secs).round() as u64)
        .put(
            "mbytes_per_sec",
            ((r.consumed as f64 / secs / 1e6) * 10.0).round() / 10.0,
        );
    put_market(&mut rep, &md);
    rep.put("top_of_book", top_of_book_json(md.book(), a.top));
    if let Some(e) = &error {
        rep.put("error", format!("{e:#}"));
    }
    rep.print(a.json);
    if let Some(e) = error {
        eprintln!("hftnet replay: {e:#}; the figures above cover the records before it");
        return Ok(ExitCode::from(1));
    }
    if let Err(e) = md.book().check_invariants() {
        eprintln!("hftnet replay: the books are inconsistent: {e}");
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
