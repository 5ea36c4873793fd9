//! Replay: a Nasdaq ITCH 5.0 file (plain or gzip) through the books, with
//! counts by type, throughput, invariants and the top of the books.
//!
//! Layer: apps (file I/O around `hftnet_trade::market::MarketData`).
//! Invariants: records are read in place — from a memory mapping of a plain
//! file, from the reader's buffer for gzip — a buffer at a time. On one
//! thread they go to `MarketData::handle_records`, which decodes ahead of
//! the message it applies and prefetches what the coming lookups need. On
//! two (the default when the process may use two CPUs;
//! [`ReplayConfig::threads`]) the calling thread reads, decodes and keeps
//! the books of one stock locate in four itself, a second thread applies
//! the other locates' ops, handed over in blocks, and the two sets of
//! books are merged at the end — into the books one thread builds, for a
//! stream whose messages name orders of their own locate, as ITCH's do
//! (see [`ReplayConfig::threads`] for what differs on other streams). No
//! loop allocates per message. A file that fails part way is not an
//! error of the run but a report with the figures so far and the reason, so
//! a cut download still shows what it held. The books are checked at the
//! end as [`ReplayConfig::check`] says (fingerprints by default).
//!
//! With [`ReplayConfig::latency`] the messages are applied one at a time
//! instead, each timed with the TSC, for the p50/p99 of each operation
//! (slower: the figures are of the book, not of the pipeline).

use std::collections::VecDeque;
use std::path::PathBuf;
use std::sync::{Condvar, Mutex, PoisonError};
use std::time::Instant;

use hftnet_bench::clock::Clock;
use hftnet_bench::stats::{LatencyStats, Summary};
use hftnet_trade::book::{self, Book, BookConfig};
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
    /// 2 (or more): the calling thread reads, decodes and applies the
    /// messages of one stock locate in four to a book of its own; a second
    /// thread applies the other locates' messages, handed over in blocks;
    /// the books are merged at the end (less wall time when two CPUs are
    /// free, more CPU time). 0 or 1: everything on the calling thread.
    /// [`ReplayConfig::new`] takes 2 when the process may run on two CPUs
    /// or more. Timed replays ([`ReplayConfig::latency`]) run on one
    /// thread, and so does a replay whose second thread cannot be started
    /// ([`ReplayReport::threads`] says which ran).
    ///
    /// The merged books are the one-thread books — digests, counts,
    /// counters, levels, check — for a stream whose messages name orders
    /// of their own locate, as ITCH's do. On a stream that breaks that,
    /// the results can differ: a message naming an order of a locate the
    /// other thread keeps finds no order (`unknown_ref`, where one thread
    /// counts `locate_mismatch`), and a ref live under two locates kept by
    /// different threads stays live in each until the merge, which keeps
    /// the applying thread's (`duplicate_ref`) where one thread keeps the
    /// newer — so the digests and levels differ too. The merged books
    /// still pass the check. Each
    /// thread's book has its own ref index over the same refs, so the
    /// index memory can reach twice [`BookConfig::ref_window`]'s.
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
    replay_books(cfg).map(|(report, _books)| report)
}

/// [`replay`], and the books it built (one [`MarketData`], merged from
/// both threads'), to look into further — or, for a process that exits
/// right after, to leave to the exit (freeing a day's books chunk by
/// chunk took ~1.5 ms of a ~150 ms replay, which the kernel's teardown of
/// the process does in one pass anyway).
///
/// # Errors
/// As [`replay`].
pub fn replay_books(cfg: &ReplayConfig) -> Result<(ReplayReport, MarketData), ReplayError> {
    let mut threaded = !cfg.latency && cfg.threads >= 2;
    // On two threads the set-up is shared out: the applying thread
    // allocates its book's ref index and maps the back half of the file
    // while this one does its own book and the front half (one thread did
    // it all before the second started: ~25 ms of ~165).
    let mut md = MarketData::new(if threaded {
        BookConfig {
            ref_window_prealloc: 0,
            ..cfg.book.clone()
        }
    } else {
        cfg.book.clone()
    })?;
    md.set_stream_digest(cfg.stream_digest);
    let mut r = if threaded && cfg.map {
        ItchReader::open_unpopulated(&cfg.file)?
    } else {
        ItchReader::open_with(&cfg.file, cfg.map)?
    };
    let mut timed = cfg
        .latency
        .then(|| (Clock::new(), TIMED.map(|_| LatencyStats::new())));
    let start = Instant::now();
    let error = match threaded.then(|| replay_pipelined(&mut md, &cfg.book, &mut r, cfg.prefetch)) {
        Some(Ok(error)) => error,
        // No second thread to be had (nothing was read yet): one thread,
        // with what the second would have set up.
        Some(Err(NoThread)) | None => {
            if threaded {
                md.halves().1.reserve_refs(cfg.book.ref_window_prealloc);
                if let Some(p) = r.prefault() {
                    p.populate(p.unread());
                }
            }
            threaded = false;
            replay_one_thread(&mut md, &mut r, cfg.prefetch, &mut timed)
        }
    };
    let secs = start.elapsed().as_secs_f64().max(1e-9);
    let n = md.counts().total();
    let check_start = Instant::now();
    let market = MarketSummary::of_checked(&md, cfg.check);
    let check_seconds = check_start.elapsed().as_secs_f64();
    let report = ReplayReport {
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
    };
    Ok((report, md))
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
/// round between the two over two bounded queues ([`Handover`]), so
/// nothing is allocated after the start. At the end the near book is
/// merged into `md`'s ([`MarketData::absorb`]): in a stream whose messages
/// name orders of their own locate (ITCH), each book saw all of its
/// locates' messages, in order, and the merged books equal one thread's
/// (see [`ReplayConfig::threads`] for other streams). Returns why reading
/// stopped early, if it did; every op decoded before that is applied.
fn replay_pipelined(
    md: &mut MarketData,
    cfg: &BookConfig,
    r: &mut ItchReader,
    prefetch: bool,
) -> Result<Option<String>, NoThread> {
    // The same configuration for both books: their refs span the same
    // window (a quarter of the entries live in the near one), so each
    // needs as many index chunks.
    let (error, near) = {
        let (mut dec, app) = md.halves();
        run_two_threads(&mut dec, app, cfg, r, prefetch)?
    };
    let Some(near) = near else {
        return Ok(error);
    };
    Ok(match (md.absorb(near), error) {
        (Ok(()), error) => error,
        (Err(e), None) => Some(format!("merging the two threads' books: {e}")),
        (Err(e), Some(error)) => Some(format!("{error}; and merging the two threads' books: {e}")),
    })
}

/// The second thread could not be started (before anything was read).
#[derive(Debug)]
struct NoThread;

/// The threads of [`replay_pipelined`]: `far` applied on a second thread,
/// the rest on this one, into a near book built (with `cfg`) once the
/// second thread runs; returns it for the merge. [`NoThread`] when the
/// second thread cannot be started, before `r` is touched.
fn run_two_threads(
    dec: &mut StreamDecoder<'_>,
    mut far: BookApplier<'_>,
    cfg: &BookConfig,
    r: &mut ItchReader,
    prefetch: bool,
) -> Result<(Option<String>, Option<Book>), NoThread> {
    let full = Handover::new();
    let free = Handover::new();
    for _ in 0..BLOCKS {
        let b = OpBlock {
            ops: vec![BookOp::default(); BLOCK_OPS].into_boxed_slice(),
            n: 0,
        };
        if free.send(b).is_err() {
            unreachable!("nothing closed it yet");
        }
    }
    let hint = |p: *const u8| {
        if prefetch {
            hftnet_sys::hint::prefetch(p);
        }
    };
    // The file's unread bytes: the front half mapped by this thread, the
    // back half by the applying one, before their loops.
    let prefault = r.prefault();
    let halves = prefault.as_ref().map(|p| {
        let u = p.unread();
        let mid = u.start + (u.end - u.start) / 2;
        (u.start..mid, mid..u.end)
    });
    std::thread::scope(|s| {
        let applier = std::thread::Builder::new()
            .name("hftnet-apply".into())
            .spawn_scoped(s, || {
                // Closed however this thread ends, so the decoder never
                // waits for a block that will not come.
                let _closes = Closes(&free);
                far.reserve_refs(cfg.ref_window_prealloc);
                if let (Some(p), Some((_, back))) = (&prefault, &halves) {
                    p.populate(back.clone());
                }
                while let Some(b) = full.recv() {
                    far.apply_ops(&b.ops[..b.n], hint);
                    // The decoder may have finished and gone: then this
                    // block is not needed any more.
                    let _ = free.send(OpBlock { n: 0, ..b });
                }
            });
        let Ok(applier) = applier else {
            return Err(NoThread);
        };
        let closes = Closes(&full);
        if let (Some(p), Some((front, _))) = (&prefault, &halves) {
            p.populate(front.clone());
        }
        let mut near = match Book::new(cfg.clone()) {
            Ok(b) => b,
            Err(e) => {
                drop(closes);
                let _ = applier.join();
                return Ok((Some(format!("the decoding thread's book: {e}")), None));
            }
        };
        let error = {
            let mut near_app = BookApplier::new(&mut near);
            let error = decode_and_split(dec, &mut near_app, hint, r, &full, &free);
            drop(closes);
            error
        };
        if applier.join().is_err() {
            return Ok((Some("the applying thread panicked".to_string()), Some(near)));
        }
        Ok((error, Some(near)))
    })
}

/// A bounded queue of blocks from one thread to the other, which never
/// allocates once made (std's channels allocate a waiter the first time a
/// thread blocks on them, so a replay's allocation count would depend on
/// timing). It holds at most [`BLOCKS`] blocks, all there are.
struct Handover {
    q: Mutex<Queue>,
    ready: Condvar,
}

/// What a [`Handover`]'s lock guards.
struct Queue {
    blocks: VecDeque<OpBlock>,
    closed: bool,
    /// The receiver sleeps on the condvar: a send must wake it. Otherwise
    /// no wake-up is sent (std's `notify_one` makes a system call even
    /// when nobody waits: two per block, ~1,800 a replay).
    waiting: bool,
}

impl Handover {
    fn new() -> Self {
        Handover {
            q: Mutex::new(Queue {
                blocks: VecDeque::with_capacity(BLOCKS),
                closed: false,
                waiting: false,
            }),
            ready: Condvar::new(),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Queue> {
        // Nothing panics while holding it; a poisoned lock's data is whole.
        self.q.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `b`; gives it back when the queue is closed.
    fn send(&self, b: OpBlock) -> Result<(), OpBlock> {
        let mut g = self.lock();
        if g.closed {
            return Err(b);
        }
        g.blocks.push_back(b);
        let wake = g.waiting;
        drop(g);
        if wake {
            self.ready.notify_one();
        }
        Ok(())
    }

    /// The next block, waiting for one; `None` once the queue is closed
    /// and empty. One receiver per queue.
    fn recv(&self) -> Option<OpBlock> {
        let mut g = self.lock();
        loop {
            if let Some(b) = g.blocks.pop_front() {
                return Some(b);
            }
            if g.closed {
                return None;
            }
            g.waiting = true;
            g = self.ready.wait(g).unwrap_or_else(PoisonError::into_inner);
            g.waiting = false;
        }
    }

    fn close(&self) {
        self.lock().closed = true;
        self.ready.notify_all();
    }
}

/// Closes its [`Handover`] when dropped (also when its thread panics).
struct Closes<'a>(&'a Handover);

impl Drop for Closes<'_> {
    fn drop(&mut self) {
        self.0.close();
    }
}

/// The decoding side of [`run_two_threads`]: reads `r` to its end (or its
/// first bad or cut record), applies the near locates' ops to `near` and
/// sends the others, in blocks, to `full`.
fn decode_and_split(
    dec: &mut StreamDecoder<'_>,
    near: &mut BookApplier<'_>,
    hint: impl Fn(*const u8) + Copy,
    r: &mut ItchReader,
    full: &Handover,
    free: &Handover,
) -> Option<String> {
    let gone = || Some("the applying thread stopped early".to_string());
    let Some(mut block) = free.recv() else {
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
                let next = match full.send(block) {
                    Ok(()) => free.recv(),
                    Err(_) => None,
                };
                let Some(next) = next else {
                    // What was decoded is counted, if not applied.
                    r.consume(used);
                    return gone();
                };
                block = next;
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
        if let Some(e) = stop_after(r, used, bad, left) {
            break Some(e);
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
        if let Some(e) = stop_after(r, done.used, done.error, left) {
            break Some(e);
        }
    }
}

/// Why reading stops after a buffer of `left` bytes of which whole records
/// of `used` bytes were handled (and consumed): the bad record at `used`,
/// or a cut file — not one whole record, though `fill` read to the end.
/// `None`: read on.
fn stop_after(
    r: &ItchReader,
    used: usize,
    bad: Option<hftnet_wire::Error>,
    left: usize,
) -> Option<String> {
    let e = match bad {
        Some(reason) => ItchReadError::BadRecord {
            offset: r.consumed(),
            reason,
        },
        None if used == 0 => ItchReadError::Truncated {
            offset: r.consumed(),
            left,
        },
        None => return None,
    };
    Some(crate::error_chain(&e))
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

#[cfg(test)]
mod tests {
    use super::*;

    fn block(n: usize) -> OpBlock {
        OpBlock {
            ops: vec![BookOp::default(); 4].into_boxed_slice(),
            n,
        }
    }

    /// The books `replay_books` gives back are the ones the report
    /// describes, on one thread and on two (merged), and the same books.
    #[test]
    fn replay_books_gives_the_books_the_report_describes() {
        let path =
            std::env::temp_dir().join(format!("apps-replay-books-{}.itch", std::process::id()));
        let cfg = crate::exchange::ExchangeConfig {
            messages: Some(20_000),
            ..crate::exchange::ExchangeConfig::default()
        };
        crate::exchange::write_day(&cfg, &path).unwrap();
        let mut digests = Vec::new();
        for threads in [1, 2] {
            let cfg = ReplayConfig {
                threads,
                ..ReplayConfig::new(path.clone())
            };
            let (r, md) = replay_books(&cfg).unwrap();
            assert_eq!(md.book().config(), &cfg.book, "the configuration asked for");
            assert_eq!(r.threads, threads);
            assert_eq!(r.error, None);
            assert_eq!(md.book().digest(), r.market.book.digest);
            assert_eq!(md.book().live_orders(), r.market.book.live_orders);
            assert_eq!(md.counts().total(), r.messages);
            assert!(md.book().live_orders() > 0);
            digests.push(r.market.book.digest);
        }
        let _ = std::fs::remove_file(&path);
        assert_eq!(digests[0], digests[1], "one thread or two: the same books");
    }

    #[test]
    fn a_handover_gives_blocks_in_order_then_none_once_closed_and_empty() {
        let h = Handover::new();
        for n in 1..=3 {
            assert!(h.send(block(n)).is_ok());
        }
        h.close();
        assert_eq!(
            h.send(block(9)).map_err(|b| b.n),
            Err(9),
            "closed: given back"
        );
        let got: Vec<usize> = std::iter::from_fn(|| h.recv()).map(|b| b.n).collect();
        assert_eq!(
            got,
            [1, 2, 3],
            "what was queued before the close is still handed out"
        );
        assert!(h.recv().is_none());
    }

    #[test]
    fn a_waiting_receiver_wakes_for_a_block_and_for_a_close_even_after_a_panic() {
        let h = Handover::new();
        std::thread::scope(|s| {
            let rx = s.spawn(|| (h.recv().map(|b| b.n), h.recv().map(|b| b.n)));
            std::thread::sleep(std::time::Duration::from_millis(20));
            assert!(h.send(block(5)).is_ok());
            // The other side dies: its guard closes the queue on the way.
            let dying = s.spawn(|| {
                let _closes = Closes(&h);
                panic!("the other side fails");
            });
            assert!(dying.join().is_err());
            assert_eq!(rx.join().unwrap(), (Some(5), None));
        });
    }
}
