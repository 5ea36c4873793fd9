//! `hftnet replay FILE`: a Nasdaq ITCH 5.0 file through the books
//! (`hftnet_apps::replay`), reported: counts, throughput, invariants and the
//! final top of book.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, anyhow};
use clap::Args;
use hftnet_apps::market::book_config;
use hftnet_apps::replay::{ReplayConfig, replay as run_replay};

use super::{put_market, top_of_book_json};
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
    let cfg = ReplayConfig {
        file: a.file.clone(),
        book: book_config(&a.symbols).map_err(|e| anyhow!("--symbols: {e}"))?,
        top: a.top,
    };
    let r = run_replay(&cfg)?;
    let mut rep = Report::default();
    rep.put("command", "replay")
        .put("file", a.file.display().to_string())
        .put("gzip", r.gzip)
        .put("bytes", r.bytes)
        .put("messages", r.messages)
        .put("seconds", (r.seconds * 1e6).round() / 1e6)
        .put("messages_per_sec", r.messages_per_sec)
        .put("mbytes_per_sec", (r.mbytes_per_sec * 10.0).round() / 10.0);
    put_market(&mut rep, &r.market);
    rep.put("top_of_book", top_of_book_json(&r.top_of_book));
    if let Some(e) = &r.error {
        rep.put("error", e.clone());
    }
    rep.print(a.json);
    if let Some(e) = &r.error {
        eprintln!("hftnet replay: {e}; the figures above cover the records before it");
        return Ok(ExitCode::from(1));
    }
    // The same rule, in the same words, as `hftnet feed`.
    let problems = r.market.problems();
    for p in &problems {
        eprintln!("hftnet replay: {p}");
    }
    if !problems.is_empty() {
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}
