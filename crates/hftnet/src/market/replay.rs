//! `hftnet replay FILE`: a Nasdaq ITCH 5.0 file through the books
//! (`hftnet_apps::replay`), reported: counts, throughput, invariants and the
//! final top of book; with `--latency`, the p50/p99 of each book operation.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Result, anyhow};
use clap::Args;
use hftnet_apps::market::{BookCheck, book_config};
use hftnet_apps::replay::{ReplayConfig, replay_books};
use serde_json::json;

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
    /// How the books are checked at the end: `fast` (every order, level and
    /// index entry through 64-bit fingerprints; a mismatch runs the full
    /// check to name it), `full` (every order and index entry looked up),
    /// `off` (not checked: `book.invariants.ok` is null).
    #[arg(long, default_value = "fast", value_parser = parse_check)]
    check: BookCheck,
    /// Read a plain file through a buffer instead of memory-mapping it.
    #[arg(long)]
    no_mmap: bool,
    /// Time every book operation (TSC), one message at a time, and report
    /// p50/p99/... per operation in `apply_latency_ns` (slower).
    #[arg(long)]
    latency: bool,
    /// Decode ahead without the CPU prefetch hints (to measure what they
    /// bring).
    #[arg(long)]
    no_prefetch: bool,
    /// Skip the stream digest (its multiply chain costs 2–5% of a replay):
    /// `stream_digest` is then null. Counts and books are the same.
    #[arg(long)]
    no_stream_digest: bool,
    /// Threads: 1 or 2 (default 2 when the process may use two CPUs). With
    /// 2, one thread reads, decodes and applies one stock locate in four,
    /// a second applies the rest, and the books are merged at the end:
    /// the same counts, digests and books as one thread for ITCH streams
    /// (whose messages name orders of their own locate). `--latency`
    /// always uses one thread, and so does a replay whose second thread
    /// cannot be started (`threads` in the report says which ran).
    #[arg(long, value_parser = clap::value_parser!(u8).range(1..=2))]
    threads: Option<u8>,
}

fn parse_check(s: &str) -> std::result::Result<BookCheck, String> {
    BookCheck::parse(s).ok_or_else(|| format!("{s:?}: accepted: {}", BookCheck::NAMES))
}

pub fn replay(a: ReplayArgs) -> Result<ExitCode> {
    let cfg = ReplayConfig {
        file: a.file.clone(),
        book: book_config(&a.symbols).map_err(|e| anyhow!("--symbols: {e}"))?,
        top: a.top,
        check: a.check,
        map: !a.no_mmap,
        latency: a.latency,
        prefetch: !a.no_prefetch,
        stream_digest: !a.no_stream_digest,
        threads: a
            .threads
            .map_or_else(hftnet_apps::replay::default_threads, usize::from),
    };
    let (r, books) = replay_books(&cfg)?;
    // The process ends right after the report: its exit frees the books'
    // memory in one pass (dropping them here freed them chunk by chunk,
    // ~1.5 ms of a ~150 ms replay).
    std::mem::forget(books);
    let mut rep = Report::default();
    rep.put("command", "replay")
        .put("file", a.file.display().to_string())
        .put("gzip", r.gzip)
        .put("mapped", r.mapped)
        .put("huge_pages", r.huge_pages)
        .put("bytes", r.bytes)
        .put("messages", r.messages)
        .put("seconds", (r.seconds * 1e6).round() / 1e6)
        .put("messages_per_sec", r.messages_per_sec)
        .put("mbytes_per_sec", (r.mbytes_per_sec * 10.0).round() / 10.0)
        .put("threads", r.threads)
        .put("check", r.check.name())
        .put("check_seconds", (r.check_seconds * 1e6).round() / 1e6);
    put_market(&mut rep, &r.market);
    if !r.stream_digest {
        rep.put("stream_digest", serde_json::Value::Null);
    }
    if let Some(lat) = &r.apply_latency_ns {
        let mut m = serde_json::Map::new();
        for l in lat {
            let mut v = json!(l.ns);
            v["count"] = json!(l.count);
            m.insert(l.op.to_string(), v);
        }
        rep.put("apply_latency_ns", serde_json::Value::Object(m));
    }
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
