//! Replay: a Nasdaq ITCH 5.0 file (plain or gzip) through the books, with
//! counts by type, throughput, invariants and the top of the books.
//!
//! Layer: apps (file I/O around `hftnet_trade::market::MarketData`).
//! Invariants: records are read in place — from a memory mapping of a plain
//! file, from the reader's buffer for gzip — and handed to
//! `MarketData::handle_records` a buffer at a time, which decodes ahead of
//! the message it applies and prefetches what the coming lookups need; the
//! loop does not allocate per message. With two CPUs (the default when the
//! process may use them; [`ReplayConfig::threads`]) the work is split: the
//! calling thread reads, decodes and keeps the books of one locate in
//! four, a second thread applies the rest from blocks of decoded ops, and
//! the two sets of books are merged at the end into exactly what one
//! thread builds. A file that fails part way is not an
//! error of the run but a report with the figures so far and the reason, so
//! a cut download still shows what it held. The books are checked at the
//! end as [`ReplayConfig::check`] says (fingerprints by default).
//!
//! With [`ReplayConfig::latency`] the messages are applied one at a time
//! instead, each timed with the TSC, for the p50/p99 of each operation
//! (slower: the figures are of the book, not of the pipeline).

use std::path::PathBuf;
use std::sync::mpsc;
use std::time::Instant;

use hftnet_bench::clock::Clock;
use hftnet_bench::stats::{LatencyStats, Summary};
use hftnet_trade::book::{self, BookConfig};
use hftnet_trade::market::{BookApplier, BookOp, MarketData, OpKind, StreamDecoder};
use serde::Serialize;

use crate::itch_file::{ItchReadError, ItchReader};
use crate::market::{BookCheck, MarketSummary, TopOfBook, top_of_book};

/// Which file to replay and what to keep.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplayConfig {
    /// The ITCH 5.0 file (length-prefixed records), plain or gzip.
    pub file: PathBuf,
    /// The books kept (see [`crate::market::book_config`] for a list of symbols).
    pub book: BookConfig,
    /// Books whose top is reported, by stock locate.
    pub top: usize,
    /// How the books are checked at the end.
    pub check: BookCheck,
    /// Memory-map a plain file (else read it through a buffer, as gzip).
    pub map: bool,
    /// Time every book operation (one message at a time; slower).
    pub latency: bool,
    /// Give the pipeline the CPU's prefetch hint (false: the same work
    /// without hints, to measure what they bring).
    pub prefetch: bool,
    /// Keep the stream digest (`MarketData::set_stream_digest`); false
    /// saves its multiply chain when no one compares streams.
    pub stream_digest: bool,
    /// 2: decode on the calling thread and apply on a second one, ops
    /// passed in blocks (the same report, less wall time when two CPUs
    /// are free); 1: both on the calling thread. [`ReplayConfig::new`]
    /// takes 2 when the process may run on two CPUs or more. Timed
    /// replays ([`ReplayConfig::latency`]) run on one thread.
    pub threads: usize,
}

impl ReplayConfig {
    /// Replays `file` with every book kept, the top 20 reported, the fast
    /// check, the file mapped, no per-operation timing.
    #[must_use]
    pub fn new(file: PathBuf) -> Self {
        Self {
            file,
            book: BookConfig::all_symbols(),
            top: 20,
            check: BookCheck::Fast,
            map: true,
            latency: false,
            prefetch: true,
            stream_digest: true,
            threads: default_threads(),
        }
    }
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
    /// The file was read in place from a memory mapping.
    pub mapped: bool,
    /// The kernel took the huge-page advice for the mapping.
    pub huge_pages: bool,
    /// Bytes of records read (uncompressed, length prefixes included).
    pub bytes: u64,
    /// Messages handled.
    pub messages: u64,
    /// Threads the replay ran on (1 or 2: see [`ReplayConfig::threads`]).
    pub threads: usize,
    /// Time taken, seconds.
    pub seconds: f64,
    /// `messages / seconds`, rounded.
    pub messages_per_sec: u64,
    /// Uncompressed megabytes (10⁶ bytes) per second.
    pub mbytes_per_sec: f64,
    /// Whether `market.stream_digest` was kept (else it is the empty
    /// stream's value and means nothing).
    pub stream_digest: bool,
    /// How the books were checked.
    pub check: BookCheck,
    /// Time the summary took (digests and the check), seconds.
    pub check_seconds: f64,
    /// What the stream built.
    pub market: MarketSummary,
    /// With [`ReplayConfig::latency`]: the time of each book operation, by
    /// operation, in nanoseconds.
    pub apply_latency_ns: Option<Vec<OpLatency>>,
    /// The top of the first books.
    pub top_of_book: Vec<TopOfBook>,
    /// Why reading stopped before the end of the file (the figures cover
    /// the records before it).
    pub error: Option<String>,
}

/// The latency of one kind of book operation.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct OpLatency {
    /// `add`, `execute`, `execute_with_price`, `cancel`, `delete`,
    /// `replace`, `directory`, `trading_action`.
    pub op: &'static str,
    /// Operations timed.
    pub count: u64,
    /// Percentiles, nanoseconds (TSC, `LFENCE; RDTSC` on both sides: the
    /// pair's own cost, some 10–20 ns, is included).
    #[serde(flatten)]
    pub ns: Summary,
}

/// Operations timed with [`ReplayConfig::latency`], in report order.
const TIMED: [(OpKind, &str); 8] = [
    (OpKind::Add, "add"),
    (OpKind::Execute, "execute"),
    (OpKind::ExecuteWithPrice, "execute_with_price"),
    (OpKind::Cancel, "cancel"),
    (OpKind::Delete, "delete"),
    (OpKind::Replace, "replace"),
    (OpKind::Directory, "directory"),
    (OpKind::TradingAction, "trading_action"),
];

/// Replays the file of `cfg` through the books.
///
/// # Errors
/// [`ReplayError`] when the book configuration is invalid or the file cannot
/// be opened. A file that turns out bad part way gives a report with
/// [`ReplayReport::error`] set instead.
pub fn replay(cfg: &ReplayConfig) -> Result<ReplayReport, ReplayError> {
    let mut md = MarketData::new(cfg.book.clone())?;
    md.set_stream_digest(cfg.stream_digest);
    let mut r = ItchReader::open_with(&cfg.file, cfg.map)?;
    let mut timed = cfg
        .latency
        .then(|| (Clock::new(), TIMED.map(|_| LatencyStats::new())));
    let start = Instant::now();
    let threaded = timed.is_none() && cfg.threads >= 2;
    let error = if threaded {
        replay_pipelined(&mut md, &mut r, cfg.prefetch)
    } else {
        replay_one_thread(&mut md, &mut r, cfg.prefetch, &mut timed)
    };
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    let n = md.counts().total();
    let check_start = Instant::now();
    let market = MarketSummary::of_checked(&md, cfg.check);
    let check_seconds = check_start.elapsed().as_secs_f64();
    Ok(ReplayReport {
        gzip: r.is_gzip(),
        mapped: r.is_mapped(),
        huge_pages: r.huge_pages(),
        bytes: r.consumed(),
        messages: n,
        threads: if threaded { 2 } else { 1 },
        seconds: secs,
        messages_per_sec: (n as f64 / secs).round() as u64,
        mbytes_per_sec: r.consumed() as f64 / secs / 1e6,
        stream_digest: cfg.stream_digest,
        check: cfg.check,
        check_seconds,
        top_of_book: top_of_book(md.book(), cfg.top),
        market,
        apply_latency_ns: timed.map(|(_, stats)| {
            TIMED
                .iter()
                .zip(&stats)
                .filter_map(|(&(_, op), s)| {
                    Some(OpLatency {
                        op,
                        count: s.len(),
                        ns: s.summary()?,
                    })
                })
                .collect()
        }),
        error,
    })
}

/// 2 when the process may run on two CPUs or more, else 1.
#[must_use]
pub fn default_threads() -> usize {
    std::thread::available_parallelism().map_or(1, |n| n.get().min(2))
}

/// Ops per block passed from the decoding thread to the applying one.
const BLOCK_OPS: usize = 4096;
/// Blocks in flight between the two threads (allocated once per replay).
const BLOCKS: usize = 6;
/// The decoding thread also applies the ops of one locate in `NEAR_SHARE`
/// (`locate % NEAR_SHARE == 0`) to a book of its own, which balances the
/// two threads (measured on the 5M-message bench day: 2 → 0.23 s, 3 →
/// 0.19 s, 4 → 0.175 s, 5 → 0.18 s).
const NEAR_SHARE: u16 = 4;

/// A block of decoded ops on its way to the applying thread.
struct OpBlock {
    ops: Box<[BookOp]>,
    n: usize,
}

/// The replay on two threads. The calling thread reads and decodes
/// (counts, stream digest) and splits the ops by stock locate: one locate
/// in [`NEAR_SHARE`] it applies itself to a book of its own, in the same
/// loop (`StreamDecoder::decode_and_apply_near`), the others go in blocks,
/// in order, to a second thread that
/// applies them to `md`'s books, with the same prefetch hints. Blocks go
/// round between the two over two bounded channels, so nothing is
/// allocated per message. At the end the near book is merged into `md`'s
/// ([`MarketData::absorb`]): every order's messages carry its locate, so
/// each book saw all of its locates' messages, in order, and the merged
/// books equal one thread's. Returns why reading stopped early, if it did;
/// every op decoded before that is applied.
fn replay_pipelined(md: &mut MarketData, r: &mut ItchReader, prefetch: bool) -> Option<String> {
    let mut near_cfg = md.book().config().clone();
    near_cfg.ref_window_prealloc /= usize::from(NEAR_SHARE);
    let mut near = match book::Book::new(near_cfg) {
        Ok(b) => b,
        Err(e) => return Some(format!("the second book: {e}")),
    };
    let error = {
        let (mut dec, app) = md.halves();
        let near_app = BookApplier::new(&mut near);
        run_two_threads(&mut dec, app, near_app, r, prefetch)
    };
    if let Err(e) = md.absorb(near) {
        return Some(format!("merging the two threads' books: {e}"));
    }
    error
}

/// The threads of [`replay_pipelined`]: `far` applied on a second thread,
/// the rest on this one.
fn run_two_threads(
    dec: &mut StreamDecoder<'_>,
    mut far: BookApplier<'_>,
    mut near: BookApplier<'_>,
    r: &mut ItchReader,
    prefetch: bool,
) -> Option<String> {
    let (full_tx, full_rx) = mpsc::sync_channel::<OpBlock>(BLOCKS);
    let (free_tx, free_rx) = mpsc::sync_channel::<OpBlock>(BLOCKS);
    for _ in 0..BLOCKS {
        let b = OpBlock {
            ops: vec![BookOp::default(); BLOCK_OPS].into_boxed_slice(),
            n: 0,
        };
        if free_tx.send(b).is_err() {
            unreachable!("the receiver is alive");
        }
    }
    let hint = |p: *const u8| {
        if prefetch {
            hftnet_sys::hint::prefetch(p);
        }
    };
    std::thread::scope(|s| {
        let applier = std::thread::Builder::new()
            .name("hftnet-apply".into())
            .spawn_scoped(s, move || {
                for b in full_rx {
                    far.apply_ops(&b.ops[..b.n], hint);
                    // The decoder may have finished and gone: then this
                    // block is not needed any more.
                    let _ = free_tx.send(OpBlock { n: 0, ..b });
                }
            });
        let applier = match applier {
            Ok(h) => h,
            Err(e) => return Some(format!("cannot start the applying thread: {e}")),
        };
        let error = decode_and_split(dec, &mut near, hint, r, &full_tx, &free_rx);
        drop(full_tx);
        if applier.join().is_err() {
            return Some("the applying thread panicked".to_string());
        }
        error
    })
}

/// The decoding side of [`run_two_threads`]: reads `r` to its end (or its
/// first bad or cut record), applies the near locates' ops to `near` and
/// sends the others, in blocks, to `full`.
fn decode_and_split(
    dec: &mut StreamDecoder<'_>,
    near: &mut BookApplier<'_>,
    hint: impl Fn(*const u8) + Copy,
    r: &mut ItchReader,
    full: &mpsc::SyncSender<OpBlock>,
    free: &mpsc::Receiver<OpBlock>,
) -> Option<String> {
    let gone = || Some("the applying thread stopped early".to_string());
    let Ok(mut block) = free.recv() else {
        return gone();
    };
    let error = loop {
        let buf = match r.fill() {
            Ok(b) => b,
            Err(e) => break Some(crate::error_chain(&e)),
        };
        if buf.is_empty() {
            break None;
        }
        let left = buf.len();
        let mut used = 0usize;
        let bad = loop {
            if block.n == block.ops.len() {
                if full.send(block).is_err() {
                    return gone();
                }
                block = match free.recv() {
                    Ok(b) => b,
                    Err(_) => return gone(),
                };
            }
            let (done, n) = dec.decode_and_apply_near(
                &buf[used..],
                near,
                |op| op.locate % NEAR_SHARE == 0,
                &mut block.ops[block.n..],
                hint,
            );
            used += done.used;
            block.n += n;
            if done.error.is_some() || block.n < block.ops.len() {
                break done.error;
            }
        };
        r.consume(used);
        if let Some(reason) = bad {
            let e = ItchReadError::BadRecord {
                offset: r.consumed(),
                reason,
            };
            break Some(crate::error_chain(&e));
        }
        if used == 0 {
            // Not one whole record, and `fill` read to the end: a cut file.
            let e = ItchReadError::Truncated {
                offset: r.consumed(),
                left,
            };
            break Some(crate::error_chain(&e));
        }
    };
    if block.n > 0 && full.send(block).is_err() {
        return gone();
    }
    error
}

/// Clock and per-operation statistics of a timed replay.
type Timed = Option<(Clock, [LatencyStats; TIMED.len()])>;

/// The replay on the calling thread: decode ahead and apply, a buffer at
/// a time (or one message at a time, timed). Returns why reading stopped
/// early, if it did.
fn replay_one_thread(
    md: &mut MarketData,
    r: &mut ItchReader,
    prefetch: bool,
    timed: &mut Timed,
) -> Option<String> {
    loop {
        let buf = match r.fill() {
            Ok(b) => b,
            Err(e) => break Some(crate::error_chain(&e)),
        };
        if buf.is_empty() {
            break None;
        }
        let left = buf.len();
        let done = match timed {
            None if prefetch => md.handle_records(buf, hftnet_sys::hint::prefetch::<u8>),
            None => md.handle_records(buf, |_| {}),
            Some((clock, stats)) => handle_timed(md, buf, clock, stats),
        };
        r.consume(done.used);
        if let Some(reason) = done.error {
            let e = ItchReadError::BadRecord {
                offset: r.consumed(),
                reason,
            };
            break Some(crate::error_chain(&e));
        }
        if done.used == 0 {
            // Not one whole record, and `fill` read to the end: a cut file.
            let e = ItchReadError::Truncated {
                offset: r.consumed(),
                left,
            };
            break Some(crate::error_chain(&e));
        }
    }
}

/// `MarketData::handle_records` one message at a time, each book operation
/// timed into `stats` (by [`TIMED`] position). No allocation.
fn handle_timed(
    md: &mut MarketData,
    bytes: &[u8],
    clock: &Clock,
    stats: &mut [LatencyStats; TIMED.len()],
) -> hftnet_trade::market::RecordsHandled {
    let mut at = 0;
    loop {
        match hftnet_wire::itch50::file::next_record(&bytes[at..]) {
            Ok(Some((msg, used))) => {
                at += used;
                let Some(op) = md.decode(msg) else {
                    continue;
                };
                let Some(k) = TIMED.iter().position(|&(kind, _)| kind == op.kind) else {
                    md.apply_op(&op);
                    continue;
                };
                let t0 = clock.now();
                md.apply_op(&op);
                let t1 = clock.now();
                stats[k].record(clock.to_ns(t1.wrapping_sub(t0)));
            }
            Ok(None) => {
                return hftnet_trade::market::RecordsHandled {
                    used: at,
                    error: None,
                };
            }
            Err(e) => {
                return hftnet_trade::market::RecordsHandled {
                    used: at,
                    error: Some(e),
                };
            }
        }
    }
}
