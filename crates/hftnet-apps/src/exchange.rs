//! The exchange: an ITCH 5.0 day — generated from a seed, or replayed from
//! a Nasdaq-format file — published in MoldUDP64 on feeds A and B, paced on
//! a timetable, with heartbeats, a re-request server, the end of the session
//! and a linger that keeps answering re-requests; or, with [`write_day`],
//! the same day written to a file.
//!
//! Layer: apps. The protocol is the sans-IO `hftnet_trade::exchange`
//! ([`Publisher`], [`Generator`]); this module moves its packets to the
//! transports and its requests from them, and keeps time. Faults on a feed
//! are the transport's fault middleware (`loss=`, `dup=`, `reorder=` on its
//! URI, or `hftnet_io::Layers`): the exchange sends, the middleware drops,
//! duplicates and reorders, and the report reads what it did.
//!
//! Pacing: message `k` is due `k / rate` seconds after the start
//! ([`Timetable`]); when it is due, a burst of 1 to `burst` messages (sizes
//! drawn from the seed) is published back to back. After a stall longer than
//! [`MAX_CATCH_UP`] the timetable restarts from now (counted) rather than
//! sending everything missed at once. At rate 0 every burst is due at once.
//! Packing: the bursts due are packed back to back into packets of up to
//! `max_payload` bytes; the packet being filled leaves when it is full or
//! when the next burst is not due yet — so at rate 0, or behind schedule,
//! packets leave full, and on schedule each burst leaves as soon as it is
//! published. Between due times the loop serves re-requests, sleeping while
//! the next one is far and spinning when it is near; while publishing flat
//! out it polls them every 20 µs.
//!
//! What is published is tallied (counts by type, the stream digest); the
//! reference books are built only when the configuration asks for them
//! ([`ExchangeConfig::book`]): they cost the exchange about what they cost
//! the feed handler.
//!
//! Re-requests are answered only for the sources the configuration allows
//! — by default the hosts feeds A and B send to (their unicast
//! destinations; a multicast feed's subscribers are unknown, so its
//! exchange must name them) — and each source only as far as its token
//! buckets of messages and bytes per second pay for ([`RequestGuard`]): the
//! server cannot be turned into a reflection amplifier by forged sources.
//! Refusals are counted by reason in the report.
//!
//! Invariants: packets go from the publisher's own buffer straight to the
//! transports, and re-request replies straight from
//! the history to the requester, so after the buffers are allocated at the
//! start nothing is allocated, formatted or logged per message or per
//! request (refused requests are kept as values and formatted after the
//! run). The loop is bounded: by the message count, the duration or the end
//! of the file, then by the linger; the stop flag ends the session early
//! (its end events are still sent) and cuts the linger short.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use hftnet_bench::stats::LatencyStats;
use hftnet_bench::timetable::{Timetable, WaitPolicy, WaitStep};
use hftnet_io::{RxBurst, SyscallError, Transport, TxMsg};
use hftnet_trade::book::{self, BookConfig};
use hftnet_trade::exchange::{
    Generator, GeneratorConfig, GeneratorError, LimitError, PublishError, Publisher,
    PublisherConfig, Refusal, RequestError, RequestGuard, RequestLimits, SourcePrefix,
};
use hftnet_trade::market::{MarketData, MessageCounts, StreamDigest};
use hftnet_trade::rng::Rng;
use hftnet_wire::itch50::{Message, MessageType};
use hftnet_wire::moldudp64::{BLOCK_HEADER_LEN, HEADER_LEN, Session};
use serde::Serialize;

use crate::Transports;
use crate::itch_file::{ItchReadError, ItchReader, ItchWriteError, ItchWriter};
use crate::market::{BookSummary, CountsSummary, MarketSummary};
use crate::order_entry::{
    ItchSink, OrderEntry, OrderEntryConfig, OrderEntryConfigError, OrderEntryError,
    OrderEntryReport, SEND_TIMES, SendTimes,
};

/// The smallest `max_payload`: MoldUDP64 header (20) + block length (2) +
/// the largest ITCH 5.0 message (50).
pub const MIN_PAYLOAD: usize = 72;
/// The largest `burst`.
pub const MAX_BURST: u64 = 65_536;
/// The most packets [`ExchangeConfig::tx_batch`] holds for one send.
pub const MAX_TX_BATCH: usize = 64;
/// The shortest heartbeat interval.
pub const MIN_HEARTBEAT: Duration = Duration::from_millis(1);
/// After a stall longer than this the timetable restarts from now.
pub const MAX_CATCH_UP: Duration = Duration::from_millis(10);
/// Refused re-requests listed in the report; the others are only counted.
pub const REFUSED_LISTED: usize = 10;
/// Bytes of the re-request history per message kept: room for any ITCH 5.0
/// message (at most 50 bytes).
const HISTORY_BYTES_PER_MESSAGE: usize = 64;
/// The system events of a generated day besides its order flow, directory
/// and trading actions (three at the start, three at the end).
const GENERATED_EVENTS: u64 = 6;
/// Re-requests taken per receive call, and the slot size (a request is 20 bytes).
const REQUEST_BURST: usize = 16;
const REQUEST_SLOT: usize = 64;
/// Between due times: sleep when the next one is more than 200 µs away, at
/// most 1 ms at a time so re-requests are served; spin otherwise.
const IDLE: WaitPolicy = WaitPolicy {
    sleep_above: Duration::from_micros(200),
    wake_early: Duration::from_micros(100),
    max_sleep: Some(Duration::from_millis(1)),
};
/// Most messages published in one round of the loop before it looks at the
/// clock, the stop flag and the re-requests again.
const ROUND_MESSAGES: u64 = 1024;
/// While publishing flat out, the re-request transport is polled this often
/// (ns): a receive call per burst would cost more than the burst.
const POLL_EVERY_NS: u64 = 20_000;
/// Mixed into `seed` for the burst sizes.
const BURST_SEED: u64 = 0x0b0e;

/// A MoldUDP64 session name for one run: `H` and 9 base-36 digits mixed
/// from the wall-clock time and the process id. Feed handlers tell sessions
/// apart by name: with a name of its own, a run's packets cannot be taken
/// for those of an exchange of an earlier run still lingering on the same
/// addresses (which repeats the end of its session).
#[must_use]
pub fn session_name_for_run() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_nanos() as u64);
    // splitmix64 of the time and the pid.
    let mut z = nanos ^ u64::from(std::process::id()).rotate_left(40);
    z = z.wrapping_add(0x9e37_79b9_7f4a_7c15);
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^= z >> 31;
    const DIGITS: &[u8; 36] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ";
    let mut name = String::with_capacity(10);
    name.push('H');
    for _ in 0..9 {
        name.push(char::from(DIGITS[(z % 36) as usize]));
        z /= 36;
    }
    name
}

/// Where the exchange's messages come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ExchangeSource {
    /// A generated day of `symbols` instruments, from the config's `seed`:
    /// the start events, the directory, then order flow.
    Generated {
        /// Instruments in the day.
        symbols: u16,
    },
    /// The records of a Nasdaq ITCH 5.0 file (plain or gzip).
    File(PathBuf),
}

/// What the exchange publishes, and how fast.
#[derive(Debug, Clone, PartialEq)]
pub struct ExchangeConfig {
    /// Where messages come from.
    pub source: ExchangeSource,
    /// Seed of the generated day and of the burst sizes.
    pub seed: u64,
    /// Order-flow messages of a generated day (after its start events and
    /// directory; its end events follow), or records of a file. `None`: until
    /// the duration (or the end of the file).
    pub messages: Option<u64>,
    /// End the session after this long.
    pub duration: Option<Duration>,
    /// Messages per second; 0 sends as fast as the transports take them.
    pub rate: u64,
    /// Largest burst: each burst publishes 1 to `burst` messages back to back.
    pub burst: u64,
    /// MoldUDP64 session name (up to 10 printable ASCII characters). The
    /// default, `HFTNET`, is the same for every run: give each run its own
    /// (e.g. [`session_name_for_run`]) when feed handlers may also hear an
    /// exchange of an earlier run.
    pub session: String,
    /// Heartbeat after this long without a packet (at least [`MIN_HEARTBEAT`]).
    pub heartbeat: Duration,
    /// Messages kept for re-requests.
    pub history: usize,
    /// Largest downstream packet in bytes (UDP payload), at least [`MIN_PAYLOAD`].
    pub max_payload: usize,
    /// Packets cut back to back that are handed to each feed in one send
    /// (1 to [`MAX_TX_BATCH`]; the transport's burst send: one `sendmmsg`
    /// on `udp://…?batch=N`, one kick of the ring on `xdp://` and
    /// `packet://`). Packets are only held while the next is being cut:
    /// what is held leaves when the batch is full, at the end of each round
    /// of the loop (before it looks at the clock or waits for the next
    /// burst), with a heartbeat and with the end of the session. So at a
    /// set rate a burst's packets leave as soon as it is published, and
    /// only a day published flat out (`rate` 0) or catching up waits up to
    /// `tx_batch − 1` packets' time — with the default 32, a round of 1024
    /// messages (about 24 full packets) leaves in one send per feed. 1
    /// sends each packet as it is cut; with
    /// order entry 1 is used whatever this says (each packet's send time is
    /// recorded for tick-to-trade).
    pub tx_batch: usize,
    /// After the end of the session, keep answering re-requests this long.
    pub linger: Duration,
    /// Sources whose re-requests are answered. `None`: the unicast
    /// destinations of feeds A and B (a multicast feed's subscribers are
    /// unknown: with a re-request transport, [`Exchange::run`] then refuses
    /// to start). Requests without a source address (in-process transports)
    /// are always answered.
    pub allow: Option<Vec<SourcePrefix>>,
    /// How much each source may have answered, and how many sources are
    /// tracked.
    pub request_limits: RequestLimits,
    /// The reference books the exchange builds from what it publishes
    /// (their digests, in the report, are compared with a feed handler's).
    /// `None`: no books — they cost the exchange about what they cost a feed
    /// handler — only the counts by type and the stream digest, which are
    /// always kept. [`write_day`] builds them whatever this says (all books
    /// when `None`).
    pub book: Option<BookConfig>,
    /// Order entry (OUCH 5.0 over SoupBinTCP on TCP): clients' orders meet
    /// the generated flow in the matching core, and the published feed
    /// carries what the core makes of both (see [`crate::order_entry`]).
    /// `None`: no order entry, the generated stream is published as is.
    pub order_entry: Option<OrderEntryConfig>,
}

impl Default for ExchangeConfig {
    /// The defaults of `hftnet exchange`: 100 000 messages of a generated day
    /// of 8 symbols at 100 000 messages/s in bursts of up to 8, no faults, no
    /// reference books.
    fn default() -> Self {
        Self {
            source: ExchangeSource::Generated { symbols: 8 },
            seed: 1,
            messages: Some(100_000),
            duration: None,
            rate: 100_000,
            burst: 8,
            session: "HFTNET".into(),
            heartbeat: Duration::from_secs(1),
            history: 1 << 20,
            max_payload: 1400,
            tx_batch: 32,
            linger: Duration::from_secs(2),
            allow: None,
            request_limits: RequestLimits::default(),
            book: None,
            order_entry: None,
        }
    }
}

/// A field of an [`ExchangeConfig`] out of range.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ExchangeConfigError {
    /// `burst` outside 1..=[`MAX_BURST`].
    #[error("burst {0} must be between 1 and {MAX_BURST}")]
    Burst(u64),
    /// `max_payload` below [`MIN_PAYLOAD`].
    #[error(
        "max_payload {0} is too small: a MoldUDP64 packet with the largest ITCH message needs {MIN_PAYLOAD} bytes"
    )]
    MaxPayload(usize),
    /// `tx_batch` outside 1..=[`MAX_TX_BATCH`].
    #[error("tx_batch {0} must be between 1 and {MAX_TX_BATCH}")]
    TxBatch(usize),
    /// `heartbeat` below [`MIN_HEARTBEAT`].
    #[error("heartbeat {0:?} is too short: use 1ms or more")]
    Heartbeat(Duration),
    /// `session` is not a MoldUDP64 session name.
    #[error("session {0:?}: at most 10 printable ASCII characters")]
    Session(String),
    /// A publisher field (`history`, or `max_payload` above 65507).
    #[error(transparent)]
    Publisher(#[from] hftnet_trade::exchange::ConfigError),
    /// A generator field (`symbols` of 0).
    #[error(transparent)]
    Generator(#[from] GeneratorError),
    /// A field of `book`.
    #[error(transparent)]
    Book(#[from] book::ConfigError),
    /// A field of `request_limits`.
    #[error(transparent)]
    RequestLimits(#[from] LimitError),
    /// A field of `order_entry`.
    #[error(transparent)]
    OrderEntry(#[from] OrderEntryConfigError),
    /// A generated day bounded by neither `messages` nor `duration`.
    #[error("a generated day needs a message count or a duration")]
    Unbounded,
}

impl ExchangeConfig {
    /// Checks every field.
    ///
    /// # Errors
    /// The first [`ExchangeConfigError`] found, naming the field.
    pub fn validate(&self) -> Result<(), ExchangeConfigError> {
        self.publisher_config()?.validate()?;
        if let ExchangeSource::Generated { symbols } = self.source {
            GeneratorConfig::new(self.seed, symbols).validate()?;
            if self.messages.is_none() && self.duration.is_none() {
                return Err(ExchangeConfigError::Unbounded);
            }
        }
        if let Some(b) = &self.book {
            b.validate()?;
        }
        self.request_limits.validate(self.max_payload)?;
        if let Some(o) = &self.order_entry {
            o.validate()?;
        }
        Ok(())
    }

    /// The most messages the day can publish, when that is known: a
    /// generated day of `messages` (with its start and end events, its
    /// directory and trading actions), or `messages` records of a file;
    /// `None` for a day until the duration or the end of a file, and with
    /// order entry (the clients' orders publish messages of their own).
    fn day_messages(&self) -> Option<u64> {
        if self.order_entry.is_some() {
            return None;
        }
        let n = self.messages?;
        Some(match self.source {
            ExchangeSource::Generated { symbols } => {
                n.saturating_add(2 * u64::from(symbols) + GENERATED_EVENTS)
            }
            ExchangeSource::File(_) => n,
        })
    }

    /// The publisher's configuration, after the checks of the fields it
    /// does not check itself.
    fn publisher_config(&self) -> Result<PublisherConfig, ExchangeConfigError> {
        if !(1..=MAX_BURST).contains(&self.burst) {
            return Err(ExchangeConfigError::Burst(self.burst));
        }
        if !(1..=MAX_TX_BATCH).contains(&self.tx_batch) {
            return Err(ExchangeConfigError::TxBatch(self.tx_batch));
        }
        if self.max_payload < MIN_PAYLOAD {
            return Err(ExchangeConfigError::MaxPayload(self.max_payload));
        }
        if self.heartbeat < MIN_HEARTBEAT {
            return Err(ExchangeConfigError::Heartbeat(self.heartbeat));
        }
        let session = Session::new(&self.session)
            .map_err(|_| ExchangeConfigError::Session(self.session.clone()))?;
        let max_message = self
            .max_payload
            .saturating_sub(HEADER_LEN + BLOCK_HEADER_LEN);
        let with_history = |history: usize| PublisherConfig {
            heartbeat_interval_ns: u64::try_from(self.heartbeat.as_nanos()).unwrap_or(u64::MAX),
            history,
            // Room for `history` ITCH messages whatever their lengths.
            history_bytes: history
                .saturating_add(1)
                .saturating_mul(HISTORY_BYTES_PER_MESSAGE)
                .max(max_message)
                .min(u32::MAX as usize),
            max_payload: self.max_payload,
            ..PublisherConfig::new(session)
        };
        // The history asked for is checked whatever the day's length.
        with_history(self.history).validate()?;
        // The ring is made resident when the publisher is made: a day known
        // to be shorter than the history gets a ring for its own messages
        // only (a 5,000-message test day would otherwise write 64 MiB).
        let kept = self.day_messages().map_or(self.history, |n| {
            self.history
                .min(usize::try_from(n).unwrap_or(usize::MAX).max(1))
        });
        Ok(with_history(kept))
    }
}

/// Why the exchange could not run.
#[derive(Debug, thiserror::Error)]
pub enum ExchangeError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ExchangeConfigError),
    /// Neither feed A nor feed B was given.
    #[error("no feed to publish on: give feed A, feed B or both")]
    NoFeed,
    /// The ITCH file could not be opened.
    #[error(transparent)]
    File(#[from] ItchReadError),
    /// Receiving on the re-request transport failed.
    #[error("receiving re-requests")]
    Receive(#[source] SyscallError),
    /// A re-request transport was given, no allow list, and a feed sends
    /// to a multicast group: who may re-request cannot be derived.
    #[error(
        "feed {feed} sends to the multicast group {group}: its subscribers are unknown, so the \
         re-request server cannot tell them from forged sources; name the sources allowed to \
         re-request (e.g. --allow 198.18.0.0/15 on the command line, `allow` in the library)"
    )]
    SubscribersUnknown {
        /// `A` or `B`.
        feed: char,
        /// The group the feed sends to.
        group: SocketAddr,
    },
    /// A publish transport was given: the exchange publishes MoldUDP64 on
    /// its feeds, market-data records are the feed handler's.
    #[error(
        "the exchange publishes no market-data records: give the publish transport to the feed \
         handler"
    )]
    Publish,
    /// The order entry could not start, or its connections could not be
    /// polled.
    #[error(transparent)]
    OrderEntry(#[from] OrderEntryError),
}

/// Why [`write_day`] failed.
#[derive(Debug, thiserror::Error)]
pub enum WriteDayError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] ExchangeConfigError),
    /// A generated day without a message count (a duration does not bound
    /// writing).
    #[error("writing a generated day needs a message count")]
    Unbounded,
    /// The source failed: the ITCH file could not be opened or read, or a
    /// generated message could not be encoded.
    #[error(transparent)]
    Source(#[from] SourceError),
    /// The output file could not be written.
    #[error(transparent)]
    Write(#[from] ItchWriteError),
}

/// Why the source could not give its next message.
#[derive(Debug, thiserror::Error)]
pub enum SourceError {
    /// A message of the matching core (with order entry) did not encode.
    #[error("encoding a message of the matching core")]
    Encode(#[source] hftnet_wire::Error),
    /// The ITCH file could not be opened or read.
    #[error(transparent)]
    File(#[from] ItchReadError),
}

/// What ended a session before its source did.
#[derive(Debug, thiserror::Error)]
enum Cut {
    #[error(transparent)]
    Source(SourceError),
    #[error("publishing a message")]
    Publish(#[source] PublishError),
}

/// Where messages come from, opened.
enum Source {
    /// The generator runs one message ahead: the message handed out was
    /// written while the one before it was published, so reading it does
    /// not wait for the stores that wrote it (a load that spans several
    /// smaller stores still in flight is not forwarded from them).
    Generated {
        g: Box<Generator>,
        flow_limit: Option<u64>,
        bufs: [[u8; 64]; 2],
        /// The slot of `bufs` whose message is handed out next.
        slot: usize,
        /// That message's length; `None` before the first (`primed`
        /// false) and once the day ended.
        ahead: Option<usize>,
        primed: bool,
    },
    File {
        r: Box<ItchReader>,
        limit: Option<u64>,
        read: u64,
    },
}

impl Source {
    /// Opens the source of a validated configuration.
    fn open(cfg: &ExchangeConfig) -> Result<Self, SourceOpenError> {
        Ok(match &cfg.source {
            ExchangeSource::Generated { symbols } => Self::Generated {
                g: Box::new(Generator::new(GeneratorConfig::new(cfg.seed, *symbols))?),
                flow_limit: cfg.messages,
                bufs: [[0; 64]; 2],
                slot: 0,
                ahead: None,
                primed: false,
            },
            ExchangeSource::File(path) => Self::File {
                r: Box::new(ItchReader::open(path)?),
                limit: cfg.messages,
                read: 0,
            },
        })
    }

    fn next(&mut self) -> Result<Option<&[u8]>, SourceError> {
        match self {
            Self::Generated {
                g,
                flow_limit,
                bufs,
                slot,
                ahead,
                primed,
            } => {
                let mut make = |buf: &mut [u8; 64]| {
                    if g.in_flow() && flow_limit.is_some_and(|l| g.flow_generated() >= l) {
                        g.finish();
                    }
                    g.next_into(buf)
                };
                let w = *slot;
                if !*primed {
                    *primed = true;
                    *ahead = make(&mut bufs[w]);
                }
                let Some(len) = ahead.take() else {
                    return Ok(None);
                };
                *ahead = make(&mut bufs[w ^ 1]);
                *slot = w ^ 1;
                Ok(Some(&bufs[w][..len]))
            }
            Self::File { r, limit, read } => {
                if limit.is_some_and(|l| *read >= l) {
                    return Ok(None);
                }
                *read += 1;
                Ok(r.next_record()?)
            }
        }
    }

    /// Ends a generated day early (its end events still follow).
    fn finish(&mut self) {
        match self {
            Self::Generated { g, .. } => g.finish(),
            Self::File { limit, read, .. } => *limit = Some(*read),
        }
    }
}

#[derive(Debug, thiserror::Error)]
enum SourceOpenError {
    #[error(transparent)]
    Generator(#[from] GeneratorError),
    #[error(transparent)]
    File(#[from] ItchReadError),
}

impl From<SourceOpenError> for ExchangeError {
    fn from(e: SourceOpenError) -> Self {
        match e {
            SourceOpenError::Generator(e) => Self::Config(e.into()),
            SourceOpenError::File(e) => Self::File(e),
        }
    }
}

impl From<SourceOpenError> for WriteDayError {
    fn from(e: SourceOpenError) -> Self {
        match e {
            SourceOpenError::Generator(e) => Self::Config(e.into()),
            SourceOpenError::File(e) => Self::Source(e.into()),
        }
    }
}

/// What [`write_day`] wrote.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct WriteReport {
    /// Records written.
    pub records: u64,
    /// What the day builds.
    pub market: MarketSummary,
}

/// Writes the day of `cfg` (its source, seed and message count) to a
/// Nasdaq-format ITCH 5.0 file at `path`, gzip-compressed when the name ends
/// in `.gz`.
///
/// # Errors
/// [`WriteDayError`]: an invalid configuration, a generated day without a
/// message count, a source or output file that fails.
pub fn write_day(cfg: &ExchangeConfig, path: &Path) -> Result<WriteReport, WriteDayError> {
    cfg.validate()?;
    if matches!(cfg.source, ExchangeSource::Generated { .. }) && cfg.messages.is_none() {
        return Err(WriteDayError::Unbounded);
    }
    let mut source = Source::open(cfg)?;
    let books = cfg.book.clone().unwrap_or_else(BookConfig::all_symbols);
    let mut reference = MarketData::new(books).map_err(ExchangeConfigError::from)?;
    let mut w = ItchWriter::create(path)?;
    while let Some(m) = source.next()? {
        reference.handle(m);
        w.write(m)?;
    }
    let records = w.records();
    w.finish()?;
    Ok(WriteReport {
        records,
        market: MarketSummary::of(&reference),
    })
}

/// What the exchange keeps of the stream it publishes: the counts by type
/// and the stream digest always (a few multiplies per message), the books
/// only when the configuration asks for them.
#[derive(Debug)]
enum Reference {
    Books(Box<MarketData>),
    Stream {
        counts: MessageCounts,
        digest: StreamDigest,
    },
}

impl Reference {
    fn new(book: Option<&BookConfig>) -> Result<Self, book::ConfigError> {
        Ok(match book {
            Some(b) => Self::Books(Box::new(MarketData::new(b.clone())?)),
            None => Self::Stream {
                counts: MessageCounts::default(),
                digest: StreamDigest::default(),
            },
        })
    }

    /// Takes one published message. Without books a message is counted
    /// malformed when it is shorter than its type (the books also refuse
    /// fields out of range).
    #[inline]
    fn handle(&mut self, m: &[u8]) {
        match self {
            Self::Books(md) => {
                md.handle(m);
            }
            Self::Stream { counts, digest } => {
                digest.add(m);
                match m.first().map(|&b| MessageType::from_byte(b)) {
                    None => counts.malformed += 1,
                    Some(None) => counts.unknown += 1,
                    Some(Some(t)) if m.len() < t.message_len() => counts.malformed += 1,
                    Some(Some(t)) => counts.by_type[t.index()] += 1,
                }
            }
        }
    }

    fn summary(&self) -> ReferenceSummary {
        match self {
            Self::Books(md) => {
                let m = MarketSummary::of(md);
                ReferenceSummary {
                    counts: m.counts,
                    stream_digest: m.stream_digest,
                    book: Some(m.book),
                }
            }
            Self::Stream { counts, digest } => ReferenceSummary {
                counts: CountsSummary::of(counts),
                stream_digest: digest.value(),
                book: None,
            },
        }
    }
}

/// Serialises a digest as 16 hex digits, as [`MarketSummary`] does.
fn hex<S: serde::Serializer>(v: &u64, s: S) -> Result<S::Ok, S::Error> {
    s.collect_str(&format_args!("{v:016x}"))
}

/// What the published stream built: [`MarketSummary`]'s figures, the books
/// only when the exchange built them ([`ExchangeConfig::book`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReferenceSummary {
    /// Messages by type.
    pub counts: CountsSummary,
    /// Digest of every message in order (equal to a feed handler's: the
    /// same stream).
    #[serde(serialize_with = "hex")]
    pub stream_digest: u64,
    /// Book-wide figures (`None`: no books were asked for).
    pub book: Option<BookSummary>,
}

/// What the fault middleware of one feed's transport did (all zero when it
/// has none).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FaultFigures {
    /// Packets the exchange handed to the feed's transport.
    pub packets: u64,
    /// Packets dropped.
    pub dropped: u64,
    /// Extra copies sent.
    pub duplicated: u64,
    /// Packets held back and sent after a later one.
    pub reordered: u64,
}

impl FaultFigures {
    /// `packets` handed to `t`, with what its fault middleware did to them.
    fn of<T: Transport>(t: Option<&mut T>, packets: u64) -> Self {
        let f = t
            .and_then(|t| t.capabilities().middleware)
            .and_then(|m| m.faults_tx)
            .unwrap_or_default();
        Self {
            packets,
            dropped: f.dropped,
            duplicated: f.duplicated,
            reordered: f.reordered,
        }
    }
}

/// The fault injection of both feeds.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct FeedFaults {
    /// Feed A.
    pub a: FaultFigures,
    /// Feed B.
    pub b: FaultFigures,
}

/// What the re-request server did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct RetransmissionFigures {
    /// Requests answered.
    pub requests: u64,
    /// Requests of allowed sources refused (malformed, another session, not
    /// published yet, out of the history).
    pub bad_requests: u64,
    /// Packets sent in reply.
    pub packets: u64,
    /// Messages sent again.
    pub messages: u64,
    /// Requests answered only in part: their source's rate limit ran out.
    pub cut: u64,
    /// Requests not answered at all, by reason (see [`Refusals`]).
    pub refusals: Refusals,
    /// The sources allowed to re-request (`ADDRESS` or `ADDRESS/LENGTH`).
    pub allowed: Vec<String>,
    /// Sources in the rate limiter's table at the end.
    pub sources: usize,
    /// The first [`REFUSED_LISTED`] refusals: `"peer: why"`.
    pub refused: Vec<String>,
}

/// Re-requests refused before they were read, by reason.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Refusals {
    /// The source is not allowed.
    pub not_allowed: u64,
    /// The source was over its rate limit.
    pub rate_limited: u64,
    /// The rate limiter's table was full of sources still being limited.
    pub too_many_sources: u64,
    /// All sources together were over the total rate limit.
    pub total_limited: u64,
}

impl Refusals {
    /// All of them.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.not_allowed + self.rate_limited + self.too_many_sources + self.total_limited
    }
}

/// What an exchange run did.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ExchangeReport {
    /// Messages published.
    pub messages: u64,
    /// Downstream packets with messages (per feed, before the transports'
    /// fault injection).
    pub packets: u64,
    /// Heartbeats sent.
    pub heartbeats: u64,
    /// From the start to the end of the session (or of the run, if it did
    /// not end), seconds.
    pub seconds: f64,
    /// `messages / seconds`, rounded.
    pub messages_per_sec: u64,
    /// The rate asked for (0: as fast as possible).
    pub rate_target: u64,
    /// The most a burst started behind its scheduled time, µs (`None` at
    /// rate 0: no schedule).
    pub behind_schedule_max_us: Option<u64>,
    /// Times the timetable restarted after a stall longer than [`MAX_CATCH_UP`].
    pub schedule_restarts: u64,
    /// Packets the transports refused (feeds and replies); receivers see
    /// them as loss.
    pub send_errors: u64,
    /// What the feeds' fault middlewares did.
    pub faults: FeedFaults,
    /// The re-request server.
    pub retransmission: RetransmissionFigures,
    /// What the published stream builds (its books only when asked for).
    pub market: ReferenceSummary,
    /// What ended the session before its source did (a file that ends inside
    /// a record, a message too long for a packet); the figures cover what was
    /// published before it.
    pub error: Option<String>,
    /// The order entry (`None` when the exchange took no orders).
    pub order_entry: Option<OrderEntryReport>,
}

/// One downstream line: its transport (if any) and what it was handed.
struct Downstream<'a, T> {
    t: Option<&'a mut T>,
    packets: &'a mut u64,
    /// Send a packet again when its send reported an earlier packet's
    /// "port unreachable": only without a fault middleware, whose injected
    /// copies and held packets make the retry a second offer to the
    /// injector.
    retry_refused: bool,
}

impl<'a, T: Transport> Downstream<'a, T> {
    fn new(t: Option<&'a mut T>, packets: &'a mut u64) -> Self {
        let faults = t
            .as_ref()
            .and_then(|t| t.capabilities().middleware)
            .is_some_and(|m| m.faults_tx.is_some());
        Self {
            t,
            packets,
            retry_refused: !faults,
        }
    }
}

impl<T: Transport> Downstream<'_, T> {
    /// Sends `p` on the line; `release` (heartbeats and the end) also makes
    /// a fault middleware send what it holds back.
    fn send(&mut self, p: &[u8], release: bool, send_errors: &mut u64) {
        let Some(t) = self.t.as_deref_mut() else {
            return;
        };
        *self.packets += 1;
        match t.send(p, None) {
            Ok(()) => {}
            // A connected UDP socket reports the "port unreachable" an
            // earlier packet drew (nobody bound there yet: a heartbeat
            // before the receiver started) on the next send, which then
            // sends nothing. The error is the earlier packet's: send this
            // one again, so the first packet a late receiver could get is
            // not lost to it.
            Err(e) if self.retry_refused && e.errno() == Some(libc::ECONNREFUSED) => {
                if t.send(p, None).is_err() {
                    *send_errors += 1;
                }
            }
            Err(_) => *send_errors += 1,
        }
        if (release || p.len() <= HEADER_LEN) && t.release_held().is_err() {
            *send_errors += 1;
        }
    }
}

impl<T: Transport> Downstream<'_, T> {
    /// Sends `msgs` on the line in as few burst sends as the transport
    /// takes them in. No packet is offered twice (a fault middleware would
    /// count it twice; a ring whose kick failed still holds what it
    /// queued): the first packet a burst send did not take is counted in
    /// `send_errors` and the rest go in the next send; a send that fails
    /// outright counts every packet it was given. `release`: as for
    /// [`Downstream::send`].
    fn send_all(&mut self, msgs: &[TxMsg<'_>], release: bool, send_errors: &mut u64) {
        let Some(t) = self.t.as_deref_mut() else {
            return;
        };
        *self.packets += msgs.len() as u64;
        let mut off = 0;
        let mut retried = false;
        while off < msgs.len() {
            let rest = msgs.len() - off;
            match t.send_burst(&msgs[off..]) {
                Ok(n) if n >= rest => break,
                Ok(n) => {
                    *send_errors += 1;
                    off += n + 1;
                }
                // An earlier packet's "port unreachable" (see `send`): the
                // send took nothing, so the packets go again, once.
                Err(e)
                    if self.retry_refused && !retried && e.errno() == Some(libc::ECONNREFUSED) =>
                {
                    retried = true;
                }
                Err(_) => {
                    *send_errors += rest as u64;
                    break;
                }
            }
        }
        if release && t.release_held().is_err() {
            *send_errors += 1;
        }
    }
}

/// Packets held for one send to both feeds ([`ExchangeConfig::tx_batch`]):
/// their bytes back to back, and where each ends. Allocated once, for
/// `batch` packets of the largest size.
#[derive(Debug)]
struct Staged {
    bytes: Vec<u8>,
    ends: Vec<usize>,
    batch: usize,
    /// A held packet asks a fault middleware to send what it holds back.
    release: bool,
}

impl Staged {
    fn new(batch: usize, max_payload: usize) -> Self {
        Self {
            bytes: Vec::with_capacity(batch * max_payload),
            ends: Vec::with_capacity(batch),
            batch,
            release: false,
        }
    }
}

/// Both lines.
struct Feeds<'a, A, B> {
    a: Downstream<'a, A>,
    b: Downstream<'a, B>,
    send_errors: &'a mut u64,
    /// With order entry: when each sequence number left (the clock read
    /// right after the sends returned), and the clock's start.
    times: Option<(&'a mut SendTimes, Instant)>,
    /// Packets held for one send (`None`: each leaves as it is cut).
    staged: Option<&'a mut Staged>,
}

impl<A: Transport, B: Transport> Feeds<'_, A, B> {
    /// Sends `p` on both lines, or holds it for the next [`Feeds::flush`]
    /// when packets are batched (a heartbeat, or `release` — the end —
    /// sends at once what is held, `p` with it).
    fn send(&mut self, p: &[u8], release: bool) {
        let Some(s) = self.staged.as_deref_mut() else {
            self.a.send(p, release, self.send_errors);
            self.b.send(p, release, self.send_errors);
            if let Some((t, start)) = self.times.as_mut() {
                t.record_packet(p, elapsed_ns(*start));
            }
            return;
        };
        // A heartbeat (a header alone) leaves at once, with what is held
        // before it, as does the end.
        let heartbeat = p.len() <= HEADER_LEN;
        s.bytes.extend_from_slice(p);
        s.ends.push(s.bytes.len());
        s.release |= release || heartbeat;
        if release || heartbeat || s.ends.len() >= s.batch {
            self.flush();
        }
    }

    /// Sends what is held, in one burst send per line.
    fn flush(&mut self) {
        let Some(s) = self.staged.as_deref_mut() else {
            return;
        };
        if s.ends.is_empty() {
            return;
        }
        let mut msgs = [TxMsg {
            data: &[],
            to: None,
        }; MAX_TX_BATCH];
        let mut from = 0;
        for (m, &end) in msgs.iter_mut().zip(&s.ends) {
            m.data = &s.bytes[from..end];
            from = end;
        }
        let msgs = &msgs[..s.ends.len()];
        self.a.send_all(msgs, s.release, self.send_errors);
        self.b.send_all(msgs, s.release, self.send_errors);
        s.bytes.clear();
        s.ends.clear();
        s.release = false;
    }
}

/// The publishing path of one round: message bytes into the reference and
/// the publisher, packets to the feeds, and (with order entry) the time each
/// packet left, for external tick-to-trade.
struct Md<'x, 'f, A, B> {
    publisher: &'x mut Publisher,
    feeds: &'x mut Feeds<'f, A, B>,
    reference: &'x mut Reference,
    sent: &'x mut u64,
    now: u64,
    /// Messages published through [`ItchSink`] (they need a flush).
    from_core: bool,
    err: Option<Cut>,
}

impl<A: Transport, B: Transport> Md<'_, '_, A, B> {
    /// Publishes one encoded message.
    #[inline]
    fn bytes(&mut self, m: &[u8]) -> Result<(), PublishError> {
        self.reference.handle(m);
        let feeds = &mut *self.feeds;
        self.publisher
            .publish(self.now, m, &mut |p: &[u8]| feeds.send(p, false))?;
        *self.sent += 1;
        Ok(())
    }

    /// Sends what is packed.
    fn flush(&mut self) {
        let feeds = &mut *self.feeds;
        self.publisher
            .flush(self.now, &mut |p: &[u8]| feeds.send(p, false));
    }
}

impl<A: Transport, B: Transport> ItchSink for Md<'_, '_, A, B> {
    #[inline]
    fn itch(&mut self, m: &Message) {
        let mut buf = [0u8; 64];
        if self.err.is_some() {
            return;
        }
        self.from_core = true;
        match m.emit(&mut buf) {
            Ok(n) => {
                if let Err(e) = self.bytes(&buf[..n]) {
                    self.err = Some(Cut::Publish(e));
                }
            }
            // The core's messages are the source's, re-numbered: they
            // encode (a source error otherwise).
            Err(e) => self.err = Some(Cut::Source(SourceError::Encode(e))),
        }
    }

    #[inline]
    fn sent_at(&self, seq: u64) -> Option<u64> {
        self.feeds.times.as_ref().and_then(|(t, _)| t.sent_at(seq))
    }
}

/// Nanoseconds since `start`.
#[inline]
fn elapsed_ns(start: Instant) -> u64 {
    u64::try_from(start.elapsed().as_nanos()).unwrap_or(u64::MAX)
}

/// Why a request was not answered: the guard's refusal or the publisher's.
#[derive(Debug, Clone, Copy)]
enum Why {
    Guard(Refusal),
    Request(RequestError),
}

impl std::fmt::Display for Why {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Guard(r) => r.fmt(f),
            Self::Request(e) => e.fmt(f),
        }
    }
}

/// The first refused requests, kept as values until the report.
#[derive(Debug)]
struct Refused {
    list: [Option<(Option<SocketAddr>, Why)>; REFUSED_LISTED],
    len: usize,
}

impl Refused {
    const fn new() -> Self {
        Self {
            list: [None; REFUSED_LISTED],
            len: 0,
        }
    }

    fn note(&mut self, peer: Option<SocketAddr>, e: Why) {
        if let Some(slot) = self.list.get_mut(self.len) {
            *slot = Some((peer, e));
            self.len += 1;
        }
    }

    fn lines(&self) -> Vec<String> {
        self.list
            .iter()
            .flatten()
            .map(|(peer, e)| format!("{}: {e}", peer.map_or("?".into(), |p| p.to_string())))
            .collect()
    }
}

/// An exchange: its publisher, source, reference books and
/// clock, allocated by [`Exchange::new`], driven by [`Exchange::run`], read
/// by [`Exchange::report`] and [`Exchange::market`]. [`run_exchange`] does
/// all three.
#[derive(Debug)]
pub struct Exchange {
    rate: u64,
    burst: u64,
    /// Packets held for one send to the feeds (`tx_batch` above 1, no order
    /// entry).
    staged: Option<Staged>,
    duration_ns: Option<u64>,
    linger_ns: u64,
    publisher: Publisher,
    /// Who may re-request, and how much.
    guard: RequestGuard,
    /// Whether the allow list is the feeds' destinations (added by the
    /// first run).
    allow_feeds: bool,
    /// Packets handed to feeds A and B.
    handed: [u64; 2],
    /// What the feeds' fault middlewares did, read at the end of a run.
    faults: FeedFaults,
    source: Source,
    reference: Reference,
    rng: Rng,
    timetable: Option<Timetable>,
    rx: RxBurst,
    refused: Refused,
    cut: Option<Cut>,
    /// When the session ended, ns from the start of the run.
    ended_at: Option<u64>,
    /// The last time read, ns from the start of the run.
    now_ns: u64,
    /// The order entry, with the send time of each sequence number.
    order_entry: Option<Box<OrderEntry>>,
    times: Option<SendTimes>,
    /// Messages published.
    sent: u64,
    send_errors: u64,
    start: Option<Instant>,
}

impl std::fmt::Debug for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::Generated { g, flow_limit, .. } => f
                .debug_struct("Generated")
                .field("generated", &g.generated())
                .field("flow_limit", flow_limit)
                .finish_non_exhaustive(),
            Self::File { r, limit, read } => f
                .debug_struct("File")
                .field("reader", r)
                .field("limit", limit)
                .field("read", read)
                .finish(),
        }
    }
}

impl Exchange {
    /// Validates `cfg`, opens its source and allocates every buffer the run
    /// needs (the re-request history among them).
    ///
    /// # Errors
    /// [`ExchangeError::Config`] or [`ExchangeError::File`].
    pub fn new(cfg: &ExchangeConfig) -> Result<Self, ExchangeError> {
        cfg.validate()?;
        let publisher =
            Publisher::new(cfg.publisher_config()?).map_err(ExchangeConfigError::from)?;
        let source = Source::open(cfg)?;
        let guard = RequestGuard::new(
            cfg.allow.as_deref().unwrap_or_default(),
            2, // the destinations of feeds A and B, added by `run`
            cfg.request_limits,
            cfg.max_payload,
        )
        .map_err(ExchangeConfigError::from)?;
        let order_entry = match &cfg.order_entry {
            Some(o) => Some(Box::new(OrderEntry::open(o, &cfg.session)?)),
            None => None,
        };
        Ok(Self {
            staged: (cfg.tx_batch > 1 && order_entry.is_none())
                .then(|| Staged::new(cfg.tx_batch, cfg.max_payload)),
            times: order_entry.as_ref().map(|_| SendTimes::new(SEND_TIMES)),
            order_entry,
            guard,
            allow_feeds: cfg.allow.is_none(),
            rate: cfg.rate,
            burst: cfg.burst,
            duration_ns: cfg
                .duration
                .map(|d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX)),
            linger_ns: u64::try_from(cfg.linger.as_nanos()).unwrap_or(u64::MAX),
            publisher,
            handed: [0; 2],
            faults: FeedFaults::default(),
            source,
            reference: Reference::new(cfg.book.as_ref()).map_err(ExchangeConfigError::from)?,
            rng: Rng::new(cfg.seed ^ BURST_SEED),
            timetable: Timetable::per_second(cfg.rate).map(|t| t.with_catch_up(MAX_CATCH_UP)),
            rx: RxBurst::new(REQUEST_BURST, REQUEST_SLOT),
            refused: Refused::new(),
            cut: None,
            ended_at: None,
            now_ns: 0,
            sent: 0,
            send_errors: 0,
            start: None,
        })
    }

    /// Publishes the day over `io` until it is published and the linger has
    /// passed, or `stop` is set (the session is then ended properly and the
    /// linger cut short). Feed A, feed B or both must be given; without a
    /// re-request transport, requests are not served. Time starts at the
    /// first call; after the linger a second call returns at once.
    ///
    /// Without an allow list in the configuration, re-requests are answered
    /// for the unicast destinations of the feeds given here.
    ///
    /// # Errors
    /// [`ExchangeError::NoFeed`], [`ExchangeError::Publish`] when a
    /// publish transport was given, [`ExchangeError::SubscribersUnknown`]
    /// when a feed is multicast, re-requests are served and no allow list
    /// was given, or [`ExchangeError::Receive`] when the
    /// re-request transport fails (the session is left as it was). A source
    /// that fails part way, or a message too long for a packet, is not an
    /// error: the session ends there and the report says why.
    pub fn run<A: Transport, B: Transport, R: Transport>(
        &mut self,
        io: Transports<'_, A, B, R>,
        stop: &AtomicBool,
    ) -> Result<(), ExchangeError> {
        let Transports {
            mut feed_a,
            mut feed_b,
            retransmit,
            publish,
        } = io;
        if feed_a.is_none() && feed_b.is_none() {
            return Err(ExchangeError::NoFeed);
        }
        if publish.is_some() {
            return Err(ExchangeError::Publish);
        }
        if self.allow_feeds && retransmit.is_some() {
            let a = feed_a.as_deref().and_then(|t| t.capabilities().peer);
            let b = feed_b.as_deref().and_then(|t| t.capabilities().peer);
            for (feed, peer) in [('A', a), ('B', b)] {
                match peer {
                    Some(group) if group.ip().is_multicast() => {
                        return Err(ExchangeError::SubscribersUnknown { feed, group });
                    }
                    Some(p) => self.guard.allow(SourcePrefix::host(p.ip())),
                    // No address (in-process): its requests carry none either.
                    None => {}
                }
            }
        }
        let r = self.publish(
            feed_a.as_deref_mut(),
            feed_b.as_deref_mut(),
            retransmit,
            stop,
        );
        self.faults = FeedFaults {
            a: FaultFigures::of(feed_a, self.handed[0]),
            b: FaultFigures::of(feed_b, self.handed[1]),
        };
        r
    }

    /// The loop of [`Exchange::run`].
    fn publish<A: Transport, B: Transport, R: Transport>(
        &mut self,
        feed_a: Option<&mut A>,
        feed_b: Option<&mut B>,
        mut retransmit: Option<&mut R>,
        stop: &AtomicBool,
    ) -> Result<(), ExchangeError> {
        let [handed_a, handed_b] = &mut self.handed;
        let mut feeds = Feeds {
            a: Downstream::new(feed_a, handed_a),
            b: Downstream::new(feed_b, handed_b),
            send_errors: &mut self.send_errors,
            times: None,
            staged: self.staged.as_mut(),
        };
        let publisher = &mut self.publisher;
        let guard = &mut self.guard;
        let start = *self.start.get_or_insert_with(Instant::now);
        feeds.times = self.times.as_mut().map(|t| (t, start));
        let now_ns = || elapsed_ns(start);
        let due = |t: &Option<Timetable>, sent: u64| t.as_ref().map_or(0, |t| t.due_ns(sent));
        // When the re-request transport and the order entry were last polled.
        let mut polled = 0u64;
        let mut oe_polled = 0u64;
        let mut oe = self.order_entry.as_deref_mut();
        // The day waits for its first clients, when asked: they then see it
        // from the first message. The schedule and the duration start after.
        if let Some(o) = oe.as_deref_mut()
            && o.wait().0 > 0
        {
            let (wanted, timeout) = o.wait();
            let waited_from = Instant::now();
            while o.logged_in() < wanted && !stop.load(Ordering::Relaxed) {
                if waited_from.elapsed() >= timeout {
                    return Err(OrderEntryError::NoLogins {
                        logged_in: o.logged_in(),
                        wanted,
                        waited: timeout,
                    }
                    .into());
                }
                let now = now_ns();
                // The feeds' heartbeats go on while the day waits, so the
                // subscribers see the session alive.
                if publisher.poll_timeout().is_some_and(|t| now >= t) {
                    publisher.handle_timeout(now, &mut |p: &[u8]| feeds.send(p, false));
                    feeds.flush();
                }
                let mut md = Md {
                    publisher: &mut *publisher,
                    feeds: &mut feeds,
                    reference: &mut self.reference,
                    sent: &mut self.sent,
                    now,
                    from_core: false,
                    err: None,
                };
                let wait = (!o.spins()).then(|| Instant::now() + Duration::from_millis(10));
                o.pass(&now_ns, wait, &mut md)?;
            }
            let now = now_ns();
            if let Some(t) = self.timetable.as_mut() {
                *t = t.starting_at(now);
            }
            if let Some(d) = self.duration_ns.as_mut() {
                *d = d.saturating_add(now);
            }
        }
        loop {
            let now = now_ns();
            self.now_ns = now;
            let mut published = false;
            if self.ended_at.is_none() {
                if stop.load(Ordering::Relaxed) || self.duration_ns.is_some_and(|d| now >= d) {
                    self.source.finish();
                }
                // Every burst due now, up to a round's worth, packed back to
                // back: a packet leaves when it is full, or below when the
                // timetable leaves time before the next burst.
                let mut round = 0u64;
                while round < ROUND_MESSAGES && now >= due(&self.timetable, self.sent) {
                    if let Some(t) = self.timetable.as_mut() {
                        t.note_send(self.sent, now);
                    }
                    published = true;
                    let burst = self.rng.range(1, self.burst);
                    round += burst;
                    for _ in 0..burst {
                        let cut = match self.source.next() {
                            Ok(Some(m)) => {
                                let mut md = Md {
                                    publisher: &mut *publisher,
                                    feeds: &mut feeds,
                                    reference: &mut self.reference,
                                    sent: &mut self.sent,
                                    now,
                                    from_core: false,
                                    err: None,
                                };
                                // With order entry the generated flow goes
                                // through the matching core; a record that
                                // is not an ITCH message is published as is.
                                let parsed = oe.as_ref().and_then(|_| Message::parse(m).ok());
                                match (oe.as_deref_mut(), parsed) {
                                    (Some(o), Some(msg)) => o.generated(&msg, now, &mut md),
                                    _ => {
                                        if let Err(e) = md.bytes(m) {
                                            md.err = Some(Cut::Publish(e));
                                        }
                                    }
                                }
                                match md.err {
                                    None => continue,
                                    e => e,
                                }
                            }
                            // The end of the day.
                            Ok(None) => None,
                            Err(e) => Some(Cut::Source(e)),
                        };
                        // Either way the session ends properly, and
                        // re-requests are still served while lingering.
                        self.cut = cut;
                        publisher.end_session(now, &mut |p: &[u8]| feeds.send(p, true));
                        self.ended_at = Some(now);
                        if let Some(o) = oe.as_deref_mut() {
                            o.end_of_day(now, stop.load(Ordering::Relaxed));
                        }
                        break;
                    }
                    if self.ended_at.is_some() {
                        break;
                    }
                }
                // The next burst not due yet: what is packed leaves now. (At
                // rate 0 every burst is due: packets leave full.)
                if published
                    && self.ended_at.is_none()
                    && now_ns() < due(&self.timetable, self.sent)
                {
                    publisher.flush(now, &mut |p: &[u8]| feeds.send(p, false));
                }
                // The round's packets leave before anything else is looked at.
                feeds.flush();
            }
            if publisher.poll_timeout().is_some_and(|t| now >= t) {
                let release = self.ended_at.is_some();
                publisher.handle_timeout(now, &mut |p: &[u8]| feeds.send(p, release));
                // A packet the timeout cut leaves now, not after the wait.
                feeds.flush();
            }
            // Re-requests, answered straight from the history to the
            // requester: between due times, and every POLL_EVERY_NS while
            // publishing flat out.
            let mut served = false;
            if let Some(t) = retransmit
                .as_deref_mut()
                .filter(|_| !published || now >= polled + POLL_EVERY_NS)
            {
                polled = now;
                let n = t
                    .recv_burst_until(&mut self.rx, Instant::now())
                    .map_err(ExchangeError::Receive)?;
                for i in 0..n {
                    let (req, meta) = self.rx.get(i);
                    served = true;
                    let peer = meta.peer;
                    let ticket = match guard.admit(now, peer.map(|p| p.ip())) {
                        Ok(t) => t,
                        Err(why) => {
                            self.refused.note(peer, Why::Guard(why));
                            continue;
                        }
                    };
                    let send_errors = &mut *feeds.send_errors;
                    let answered =
                        publisher.answer_request(now, req, ticket.budget(), &mut |p: &[u8]| {
                            if t.send(p, peer).is_err() {
                                *send_errors += 1;
                            }
                        });
                    match answered {
                        Ok(reply) => guard.charge(ticket, &reply),
                        Err(e) => self.refused.note(peer, Why::Request(e)),
                    }
                }
            }
            // Order entry: every POLL_EVERY_NS while publishing flat out,
            // at every turn otherwise (and in place of the idle sleep below);
            // a spinning one (`rx=spin`) at every turn, publishing or not: an
            // order waits for one turn of the loop, not for a poll period.
            let mut md = Md {
                publisher: &mut *publisher,
                feeds: &mut feeds,
                reference: &mut self.reference,
                sent: &mut self.sent,
                now,
                from_core: false,
                err: None,
            };
            if let Some(o) = oe.as_deref_mut()
                && (!published || o.spins() || now >= oe_polled + POLL_EVERY_NS)
            {
                oe_polled = now;
                if self.ended_at.is_some() && stop.load(Ordering::Relaxed) {
                    o.end_of_day(now, true);
                }
                served |= o.pass(&now_ns, None, &mut md)?;
            }
            let stopping = stop.load(Ordering::Relaxed);
            if let Some(end) = self.ended_at
                && (now >= end.saturating_add(self.linger_ns) || stopping && now > end)
                && oe.as_deref().is_none_or(|o| o.finished(now))
            {
                return Ok(());
            }
            if !served && !published {
                let next = if self.ended_at.is_some() {
                    now + 1_000_000
                } else {
                    due(&self.timetable, *md.sent)
                };
                match IDLE.step(next.saturating_sub(now_ns())) {
                    // A spinning order entry was polled above, at this
                    // turn: the loop turns again at once.
                    _ if oe.as_deref().is_some_and(OrderEntry::spins) => {}
                    // Waiting for the clients instead of sleeping.
                    WaitStep::Sleep(d) if oe.is_some() => {
                        if let Some(o) = oe.as_deref_mut() {
                            o.pass(&now_ns, Some(Instant::now() + d), &mut md)?;
                        }
                    }
                    WaitStep::Sleep(d) => std::thread::sleep(d),
                    // Spinning on the re-request transport.
                    _ if retransmit.is_some() || oe.is_some() => {}
                    _ => std::hint::spin_loop(),
                }
            }
            // What the clients' orders made the core publish leaves now.
            if md.from_core {
                md.flush();
            }
            if let Some(e) = md.err.take()
                && self.cut.is_none()
            {
                self.cut = Some(e);
            }
        }
    }

    /// The books the published stream builds (`None` unless the
    /// configuration asked for them).
    #[must_use]
    pub fn market(&self) -> Option<&MarketData> {
        match &self.reference {
            Reference::Books(md) => Some(md),
            Reference::Stream { .. } => None,
        }
    }

    /// What the run did so far (allocates: run it after [`Exchange::run`]).
    #[must_use]
    pub fn report(&self) -> ExchangeReport {
        let secs = self.ended_at.unwrap_or(self.now_ns) as f64 / 1e9;
        let st = self.publisher.stats();
        let gs = self.guard.stats();
        ExchangeReport {
            messages: st.messages,
            packets: st.packets,
            heartbeats: st.heartbeats,
            seconds: secs,
            messages_per_sec: (st.messages as f64 / secs.max(1e-9)).round() as u64,
            rate_target: self.rate,
            behind_schedule_max_us: self.timetable.as_ref().map(|t| t.behind_max_ns() / 1000),
            schedule_restarts: self.timetable.as_ref().map_or(0, Timetable::restarts),
            send_errors: self.send_errors,
            faults: self.faults,
            retransmission: RetransmissionFigures {
                requests: st.requests,
                bad_requests: st.bad_requests,
                packets: st.retransmit_packets,
                messages: st.retransmitted,
                cut: gs.cut,
                refusals: Refusals {
                    not_allowed: gs.not_allowed,
                    rate_limited: gs.rate_limited,
                    too_many_sources: gs.too_many_sources,
                    total_limited: gs.total_limited,
                },
                allowed: self
                    .guard
                    .allowed()
                    .iter()
                    .map(ToString::to_string)
                    .collect(),
                sources: gs.sources,
                refused: self.refused.lines(),
            },
            market: self.reference.summary(),
            error: self.cut.as_ref().map(|e| crate::error_chain(e)),
            order_entry: self.order_entry.as_ref().map(|o| o.report()),
        }
    }

    /// Where the order entry listens (`None` without order entry).
    #[must_use]
    pub fn order_entry_addr(&self) -> Option<SocketAddr> {
        self.order_entry.as_ref().and_then(|o| o.local_addr())
    }

    /// The matching core of the order entry: its books equal what the feed
    /// published (`None` without order entry).
    #[must_use]
    pub fn matching(&self) -> Option<&hftnet_trade::matching::Exchange> {
        self.order_entry.as_ref().map(|o| o.core())
    }

    /// The external tick-to-trade histogram (sending the triggering packet
    /// → receiving the order), for `.hgrm` export; `None` without order
    /// entry.
    #[must_use]
    pub fn tick_to_trade(&self) -> Option<&LatencyStats> {
        self.order_entry.as_ref().map(|o| o.tick_to_trade())
    }
}

/// Runs an exchange over `io`: [`Exchange::new`], [`Exchange::run`] until
/// the day is published and the linger has passed (or `stop` is set), then
/// [`Exchange::report`].
///
/// # Errors
/// [`ExchangeError`]: an invalid configuration, no feed, an ITCH file that
/// cannot be opened, a failed receive on the re-request transport. A source
/// that fails part way, or a message too long for a packet, is not an error
/// here: the session is ended there and [`ExchangeReport::error`] says why.
pub fn run_exchange<A: Transport, B: Transport, R: Transport>(
    cfg: &ExchangeConfig,
    io: Transports<'_, A, B, R>,
    stop: &AtomicBool,
) -> Result<ExchangeReport, ExchangeError> {
    if io.feed_a.is_none() && io.feed_b.is_none() {
        return Err(ExchangeError::NoFeed);
    }
    let mut ex = Exchange::new(cfg)?;
    ex.run(io, stop)?;
    Ok(ex.report())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bad_field_is_named() {
        let ok = ExchangeConfig::default();
        assert_eq!(ok.validate(), Ok(()));
        let bad = |f: fn(&mut ExchangeConfig)| {
            let mut c = ExchangeConfig::default();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert_eq!(bad(|c| c.burst = 0), ExchangeConfigError::Burst(0));
        assert_eq!(bad(|c| c.tx_batch = 0), ExchangeConfigError::TxBatch(0));
        assert_eq!(
            bad(|c| c.tx_batch = MAX_TX_BATCH + 1),
            ExchangeConfigError::TxBatch(MAX_TX_BATCH + 1)
        );
        assert_eq!(
            bad(|c| c.burst = 65_537),
            ExchangeConfigError::Burst(65_537)
        );
        assert_eq!(
            bad(|c| c.max_payload = 40),
            ExchangeConfigError::MaxPayload(40)
        );
        assert!(
            ExchangeConfigError::MaxPayload(40)
                .to_string()
                .starts_with("max_payload 40 is too small")
        );
        assert_eq!(
            bad(|c| c.heartbeat = Duration::ZERO),
            ExchangeConfigError::Heartbeat(Duration::ZERO)
        );
        assert_eq!(
            bad(|c| c.session = "MUCH-TOO-LONG".into()),
            ExchangeConfigError::Session("MUCH-TOO-LONG".into())
        );
        match bad(|c| c.history = 0) {
            ExchangeConfigError::Publisher(e) => assert_eq!(e.field, "history"),
            e => panic!("{e}"),
        }
        match bad(|c| c.max_payload = 70_000) {
            ExchangeConfigError::Publisher(e) => assert_eq!(e.field, "max_payload"),
            e => panic!("{e}"),
        }
        assert!(matches!(
            bad(|c| c.source = ExchangeSource::Generated { symbols: 0 }),
            ExchangeConfigError::Generator(_)
        ));
        assert_eq!(bad(|c| c.messages = None), ExchangeConfigError::Unbounded);
        assert_eq!(
            bad(|c| c.book = Some(BookConfig {
                max_orders: 0,
                ..BookConfig::all_symbols()
            })),
            ExchangeConfigError::Book(book::ConfigError::MaxOrders { value: 0 })
        );
        match bad(|c| c.request_limits.burst_bytes = 100) {
            ExchangeConfigError::RequestLimits(e) => assert_eq!(e.field, "burst_bytes"),
            e => panic!("{e}"),
        }
        let by_time = ExchangeConfig {
            messages: None,
            duration: Some(Duration::from_secs(1)),
            ..ExchangeConfig::default()
        };
        assert_eq!(by_time.validate(), Ok(()));
        let whole_file = ExchangeConfig {
            messages: None,
            source: ExchangeSource::File("day.itch".into()),
            ..ExchangeConfig::default()
        };
        assert_eq!(whole_file.validate(), Ok(()));
    }

    #[test]
    fn a_session_name_for_each_run() {
        let a = session_name_for_run();
        assert_eq!(a.len(), 10);
        assert!(Session::new(&a).is_ok(), "{a}");
        std::thread::sleep(Duration::from_millis(1));
        assert_ne!(a, session_name_for_run());
    }

    #[test]
    fn the_history_has_room_for_its_itch_messages() {
        let endless = ExchangeConfig {
            messages: None,
            ..ExchangeConfig::default()
        };
        let c = endless.publisher_config().unwrap();
        assert_eq!(c.history, 1 << 20);
        assert!(c.history_bytes >= c.history * 50 + 50);
        // A day of known length: a history (and a resident ring) for its
        // messages only — 100,000 of flow, 8 directory entries and 8
        // trading actions, 6 system events.
        let c = ExchangeConfig::default().publisher_config().unwrap();
        assert_eq!(c.history, 100_022);
        assert!(c.history_bytes >= c.history * 50 + 50);
        let file = ExchangeConfig {
            source: ExchangeSource::File("day.itch".into()),
            ..ExchangeConfig::default()
        };
        assert_eq!(file.publisher_config().unwrap().history, 100_000);
        let whole_file = ExchangeConfig {
            source: ExchangeSource::File("day.itch".into()),
            messages: None,
            ..ExchangeConfig::default()
        };
        assert_eq!(whole_file.publisher_config().unwrap().history, 1 << 20);
        let small = ExchangeConfig {
            history: 1,
            max_payload: 9000,
            ..ExchangeConfig::default()
        };
        let c = small.publisher_config().unwrap();
        assert_eq!(c.history_bytes, 9000 - 22);
        assert_eq!(c.validate(), Ok(()));
        // The largest history: its ring within the u32 offsets.
        let most = ExchangeConfig {
            history: hftnet_trade::exchange::MAX_HISTORY,
            messages: None,
            ..ExchangeConfig::default()
        };
        let c = most.publisher_config().unwrap();
        assert!(c.history_bytes >= c.history * 50 + 50);
        assert!(c.history_bytes <= u32::MAX as usize);
        // A history past the largest is refused, naming the field, even for
        // a day shorter than it (the day would clamp it).
        for messages in [None, Some(1_000)] {
            let huge = ExchangeConfig {
                history: usize::MAX,
                messages,
                ..ExchangeConfig::default()
            };
            match huge.publisher_config() {
                Err(ExchangeConfigError::Publisher(e)) => assert_eq!(e.field, "history"),
                other => panic!("{messages:?}: {other:?}"),
            }
        }
    }

    /// A feed that keeps every packet it takes, and how many each send call
    /// was offered; its sends take what its script says (`Ok(n)`: the
    /// first n offered, `Err(errno)`: none), then everything.
    #[derive(Default)]
    struct Recorder {
        script: std::collections::VecDeque<Result<usize, i32>>,
        packets: Vec<Vec<u8>>,
        calls: Vec<usize>,
    }

    impl Transport for Recorder {
        fn recv_burst(&mut self, burst: &mut RxBurst) -> Result<usize, SyscallError> {
            burst.set_len(0);
            Ok(0)
        }

        fn recv_burst_until(
            &mut self,
            burst: &mut RxBurst,
            _deadline: Instant,
        ) -> Result<usize, SyscallError> {
            self.recv_burst(burst)
        }

        fn send_burst(&mut self, msgs: &[TxMsg<'_>]) -> Result<usize, SyscallError> {
            self.calls.push(msgs.len());
            match self.script.pop_front().unwrap_or(Ok(usize::MAX)) {
                Ok(n) => {
                    let n = n.min(msgs.len());
                    self.packets
                        .extend(msgs[..n].iter().map(|m| m.data.to_vec()));
                    Ok(n)
                }
                Err(errno) => Err(SyscallError::from_errno("scripted send", errno)),
            }
        }

        fn set_recv_timeout(&mut self, _: Option<Duration>) -> Result<(), SyscallError> {
            Ok(())
        }

        fn capabilities(&self) -> hftnet_io::Capabilities {
            hftnet_io::Capabilities::default()
        }
    }

    /// The packets of feeds A and B and the send calls of A, for a day of
    /// 20 000 messages at `rate`.
    fn recorded(rate: u64, tx_batch: usize) -> (Recorder, Recorder, ExchangeReport) {
        let cfg = ExchangeConfig {
            messages: Some(20_000),
            rate,
            tx_batch,
            linger: Duration::ZERO,
            ..ExchangeConfig::default()
        };
        let (mut a, mut b) = (Recorder::default(), Recorder::default());
        let mut ex = Exchange::new(&cfg).unwrap();
        let io = Transports::new().feed_a(&mut a).feed_b(&mut b);
        ex.run(io, &AtomicBool::new(false)).unwrap();
        let report = ex.report();
        (a, b, report)
    }

    #[test]
    fn packets_cut_back_to_back_leave_in_one_send_and_unchanged() {
        let (one_a, _, one) = recorded(0, 1);
        let (a, b, batched) = recorded(0, 8);
        // The same packets, in the same order, on both feeds.
        assert!(one_a.packets.len() > 400, "{}", one_a.packets.len());
        assert_eq!(a.packets, one_a.packets);
        assert_eq!(b.packets, a.packets);
        assert_eq!(batched.faults.a.packets, a.packets.len() as u64);
        assert_eq!(batched.packets, one.packets);
        assert_eq!(batched.market.stream_digest, one.market.stream_digest);
        assert_eq!(batched.send_errors, 0);
        // One packet per call unbatched; eight per call at rate 0 (a round's
        // last call and the end's may carry fewer).
        assert!(one_a.calls.iter().all(|&n| n == 1));
        assert!(
            a.calls.iter().all(|&n| (1..=8).contains(&n)),
            "{:?}",
            a.calls
        );
        let full = a.calls.iter().filter(|&&n| n == 8).count();
        assert!(full * 8 >= a.packets.len() * 3 / 4, "{:?}", a.calls);
        assert_eq!(a.calls, b.calls);
    }

    #[test]
    fn a_heartbeat_takes_what_is_held_along_at_once() {
        let mut a = Recorder::default();
        let (mut handed_a, mut handed_b, mut errors) = (0, 0, 0);
        let mut staged = Staged::new(4, 1400);
        let mut feeds = Feeds::<Recorder, Recorder> {
            a: Downstream::new(Some(&mut a), &mut handed_a),
            b: Downstream::new(None, &mut handed_b),
            send_errors: &mut errors,
            times: None,
            staged: Some(&mut staged),
        };
        let data = [7u8; 100];
        let heartbeat = [1u8; HEADER_LEN];
        feeds.send(&data, false);
        feeds.send(&data, false);
        feeds.send(&heartbeat, false);
        // Four data packets fill the batch; a flush with nothing held sends
        // nothing.
        for _ in 0..4 {
            feeds.send(&data, false);
        }
        feeds.flush();
        feeds.send(&data, false);
        feeds.flush();
        assert_eq!((handed_a, handed_b, errors), (8, 0, 0));
        assert_eq!(a.calls, [3, 4, 1]);
        assert_eq!(a.packets[2], heartbeat);
    }

    /// Sends packets 0..6 (each its number in every byte) through
    /// `send_all` on a scripted [`Recorder`]; gives it and the errors
    /// counted.
    fn send_all_with(script: &[Result<usize, i32>], retry_refused: bool) -> (Recorder, u64) {
        let mut t = Recorder {
            script: script.iter().copied().collect(),
            ..Recorder::default()
        };
        let bufs: Vec<[u8; 30]> = (0..6u8).map(|i| [i; 30]).collect();
        let msgs: Vec<TxMsg<'_>> = bufs.iter().map(|b| TxMsg { data: b, to: None }).collect();
        let (mut handed, mut errors) = (0, 0);
        let mut d = Downstream::new(Some(&mut t), &mut handed);
        d.retry_refused = retry_refused;
        d.send_all(&msgs, false, &mut errors);
        assert_eq!(handed, 6);
        (t, errors)
    }

    #[test]
    fn a_batch_is_never_offered_twice() {
        // Partial sends: the first packet not taken is counted and skipped;
        // a send that fails outright counts all it was given.
        let (t, errors) = send_all_with(&[Ok(2), Ok(1), Err(libc::EIO)], true);
        // Offered 0..6, then 3..6, then 5 alone.
        assert_eq!(t.calls, [6, 3, 1]);
        let taken: Vec<u8> = t.packets.iter().map(|p| p[0]).collect();
        assert_eq!(taken, [0, 1, 3]);
        assert_eq!(errors, 3);
        // Every packet taken at once: one call.
        let (t, errors) = send_all_with(&[], true);
        assert_eq!((t.calls.len(), t.packets.len(), errors), (1, 6, 0));
        // An earlier packet's "port unreachable": the batch goes again, once.
        let refused = Err(libc::ECONNREFUSED);
        let (t, errors) = send_all_with(&[refused], true);
        assert_eq!((t.calls.len(), t.packets.len(), errors), (2, 6, 0));
        let (t, errors) = send_all_with(&[refused, refused], true);
        assert_eq!((t.calls.len(), t.packets.len(), errors), (2, 0, 6));
        // Behind a fault middleware it is not offered again.
        let (t, errors) = send_all_with(&[refused], false);
        assert_eq!((t.calls.len(), t.packets.len(), errors), (1, 0, 6));
    }

    #[test]
    fn at_a_set_rate_each_burst_leaves_when_published() {
        // 100 000 messages/s in bursts of up to 8: a burst fits a packet, and
        // its packet leaves before the loop waits for the next burst — in a
        // call of its own, unless a stall of this machine left several
        // bursts due at once.
        let (a, b, report) = recorded(100_000, 8);
        assert_eq!(report.send_errors, 0);
        assert_eq!(a.packets, b.packets);
        let mut calls = a.calls.clone();
        calls.sort_unstable();
        assert_eq!(calls[calls.len() / 2], 1, "{:?}", a.calls);
        assert!(calls.len() * 2 > a.packets.len(), "{:?}", a.calls);
    }

    /// Every message a source hands out, as bytes.
    fn drain(src: &mut Source) -> Vec<Vec<u8>> {
        let mut out = Vec::new();
        while let Some(m) = src.next().unwrap() {
            out.push(m.to_vec());
        }
        out
    }

    #[test]
    fn a_generated_source_hands_out_the_generators_day_in_order() {
        let cfg = ExchangeConfig {
            messages: Some(5_000),
            ..ExchangeConfig::default()
        };
        let mut g = Generator::new(GeneratorConfig::new(cfg.seed, 8)).unwrap();
        let mut want = Vec::new();
        let mut buf = [0u8; 64];
        loop {
            if g.in_flow() && g.flow_generated() >= 5_000 {
                g.finish();
            }
            let Some(m) = g.next_message() else { break };
            let n = m.emit(&mut buf).unwrap();
            want.push(buf[..n].to_vec());
        }
        let mut src = Source::open(&cfg).unwrap();
        assert_eq!(drain(&mut src), want);
        assert_eq!(src.next().unwrap(), None, "still ended");
        // Ended early (the stop flag, the duration): the message already made
        // ahead still goes, then the end events.
        let mut src = Source::open(&cfg).unwrap();
        for m in &want[..100] {
            assert_eq!(src.next().unwrap(), Some(&m[..]));
        }
        src.finish();
        let rest = drain(&mut src);
        assert_eq!(rest[0], want[100]);
        assert_eq!(rest.len(), 4, "{rest:?}");
        // System events: end of market hours, of system hours, of messages.
        let ends: Vec<(u8, u8)> = rest[1..].iter().map(|m| (m[0], m[11])).collect();
        assert_eq!(ends, [(b'S', b'M'), (b'S', b'E'), (b'S', b'C')]);
    }

    #[test]
    fn refused_requests_keep_the_first_ten() {
        let mut r = Refused::new();
        let peer: SocketAddr = "127.0.0.1:9".parse().unwrap();
        for sequence in 0..15 {
            r.note(
                Some(peer),
                Why::Request(RequestError::Future { sequence, next: 3 }),
            );
        }
        r.note(
            None,
            Why::Request(RequestError::Malformed(hftnet_wire::Error::Truncated)),
        );
        let lines = r.lines();
        assert_eq!(lines.len(), REFUSED_LISTED);
        assert!(lines[0].starts_with("127.0.0.1:9: request for sequence 0"));
    }

    #[test]
    fn a_day_is_written_and_bounded() {
        let dir = std::env::temp_dir().join(format!("hftnet-apps-day-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join("day.itch");
        let cfg = ExchangeConfig {
            messages: Some(3000),
            ..ExchangeConfig::default()
        };
        let w = write_day(&cfg, &path).unwrap();
        assert!(
            w.records > 3000,
            "start events, directory, flow, end events"
        );
        assert_eq!(w.market.counts.total, w.records);
        // Replaying the file gives the same stream.
        let again = write_day(
            &ExchangeConfig {
                source: ExchangeSource::File(path.clone()),
                messages: None,
                ..ExchangeConfig::default()
            },
            &dir.join("copy.itch.gz"),
        )
        .unwrap();
        assert_eq!(again, w);
        let unbounded = ExchangeConfig {
            messages: None,
            duration: Some(Duration::from_secs(1)),
            ..ExchangeConfig::default()
        };
        assert!(matches!(
            write_day(&unbounded, &path),
            Err(WriteDayError::Unbounded)
        ));
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
