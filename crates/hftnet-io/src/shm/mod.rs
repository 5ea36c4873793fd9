//! `shm://NAME`: broadcast rings in shared memory between processes — one
//! writer that never waits for its readers, any number of readers each
//! with its own cursor, a reader that was lapped told exactly how many
//! messages it missed (never silently) — and, on top, request/response
//! with one ring per direction.
//!
//! ```text
//! shm://md?as=pub                one writer of ring "md" (e.g. `hftnet feed --publish shm://md`)
//! shm://md?as=sub&rx=block       one of many readers of ring "md"
//! shm://pp?rx=spin               duplex (the default): the server reads "pp.c2s" and writes
//!                                "pp.s2c", the client the other way round (ping/pong, blast/sink)
//! ...&slots=4096&size=256        ring shape, set by the writer (readers take the writer's)
//! ...&perm=0660&dir=/dev/shm     file permissions (0600 by default) and directory
//! ```
//!
//! Layer: a backend (one folder, one line of the table). The protocol is
//! [`ring`] (a seqlock per slot, checked by `loom`), the file and its
//! lifecycle [`mod@file`]; this module adds the writer ([`Publisher`]), the
//! reader ([`Subscriber`]) with its waiting strategies, and the transport.
//!
//! Waiting: `rx=spin` polls the next slot's sequence word (the only line
//! the writer and a spinning reader share on the hot path);
//! `rx=block` sleeps on a futex in the ring (`FUTEX_WAIT` on a shared
//! mapping: the kernel keys it by the page, so it works across processes)
//! and `rx=adaptive` spins first. A reader that may sleep registers as
//! such; only then does the writer pay a `SeqCst` fence per message to look
//! for sleepers (Dekker's argument, as in `mem://`: the writer publishes,
//! fences, reads `waiters`; the reader raises `waiters`, fences, re-reads
//! the slot; one of the two sees the other; checked by `loom` in
//! [`ring`]). Every sleep is bounded by the heartbeat period, so a sleeping
//! reader notices a dead writer; the first sleep after registering by 1 ms,
//! since a message under way may not have seen the registration (the
//! writer reads the may-sleep count without a fence, to spare spinning
//! readers' writers the fence).
//!
//! Lifecycle: the writer creates `DIR/hftnet-shm.NAME` (mode 0600), fully
//! initialised before it gets its name, and holds a lock on it while it
//! lives; a heartbeat thread stamps it every 100 ms; on drop it removes the
//! name, marks the ring closed and wakes sleepers. Readers attach by name
//! (waiting for the ring to appear), check its format version and owner,
//! take an entry in its reader table (their cursor and counters, visible to
//! `hftnet shm stat`), and tell a closed ring from a dead writer (the
//! writer's lock is free: see [`mod@file`]). A new writer takes over a stale
//! ring's name; a reader of the stale ring then attaches to the new one and
//! reads it from the oldest message still in it. A ring there but unusable
//! (another format version, another user's) is an error at open, and when
//! it appears later, an error of the receive (with the reason in the
//! capabilities' notes).
//!
//! Laps are never silent: [`Subscriber::try_recv`] returns
//! [`Poll::Lapped`] with the count; the transport counts them in its
//! capabilities (`reader.lapped`, `reader.missed`) and goes on, as a socket
//! counts drops.
//!
//! Copies: a reader copies each message out of its slot (the check after
//! the copy is what makes a lapped read safe), so receive leases are lent
//! from the reader's buffer; the writer copies from its own buffer into
//! the slot. One copy each way, no allocation per message.

pub mod file;
pub mod ring;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use hftnet_sys::SyscallError;
use hftnet_sys::futex::{self, Deadline, Scope};
use serde::Serialize;

pub use file::{
    DEFAULT_DIR, FORMAT_VERSION, MAX_READERS, ReaderInfo, RingInfo, ShmError, WriterState,
    check_name, list, path_of, remove, stat,
};

use crate::Role;
use crate::backend::{Backend, CapsSection, OneWay, Placement, RungContext, RungSpec};
use crate::capabilities::{Capabilities, CopyMode, LeaseMode};
use crate::error::OpenError;
use crate::l2::frames::{RingWait, Wait};
use crate::transport::{Lease, RxBurst, RxMeta, RxStrategy, Transport, TxLease, TxMsg};
use crate::uri::{Uri, UriError};
use file::Mapped;
use ring::Read;

/// Slots per ring unless `slots=` says otherwise.
pub const DEFAULT_SLOTS: u32 = 4096;

/// How the lab's shm rungs name their rings: `ladder-PID-PORT`, after the
/// process running the ladder, so [`remove_stale_ladder_rings`] can tell
/// the rings of a killed run.
pub const LADDER_PREFIX: &str = "ladder-";

/// Removes the rings a killed lab run left in `dir` (its writers cannot
/// unlink them): those named [`LADDER_PREFIX`]`PID-...` whose process `PID`
/// is gone and whose writer is not live; only those of process `only` when
/// given. What `hftnet lab down` does besides removing namespaces. Returns
/// each ring removed, or why one could not be.
pub fn remove_stale_ladder_rings(dir: &Path, only: Option<u32>) -> Vec<Result<String, ShmError>> {
    let mut out = Vec::new();
    for info in list(dir).into_iter().flatten() {
        let Some(pid) = info
            .name
            .strip_prefix(LADDER_PREFIX)
            .and_then(|r| r.split('-').next())
            .and_then(|p| p.parse::<u32>().ok())
        else {
            continue;
        };
        if pid == 0
            || only.is_some_and(|o| o != pid)
            || hftnet_sys::proc::exists(pid).unwrap_or(true)
            || matches!(info.writer, WriterState::Live { .. })
        {
            continue;
        }
        out.push(remove(dir, &info.name, false).map(|_| info.name.clone()));
    }
    out
}
/// Payload bytes per slot unless `size=` says otherwise.
pub const DEFAULT_SLOT_SIZE: u32 = 2048;
/// Default permissions of a ring file.
pub const DEFAULT_PERM: u32 = 0o600;
/// The longest first sleep of a reader that registered as sleeping.
pub const FIRST_SLEEP: Duration = Duration::from_millis(1);
/// Laps in a row, with no message between, after which a receive calls the
/// ring broken (a ring of sequence words a hostile writer set past every
/// cursor would otherwise lap a reader forever).
pub const MAX_LAPS_IN_A_ROW: u32 = 1 << 16;
/// The smallest receive-lease buffer: a message of a ring with larger
/// slots than this end asked for (`size=`) is lent cut to the larger of
/// the two (`RxMeta::truncated`).
pub const LEND_MIN: u32 = 65536;
/// How often a reader waiting for its ring to appear looks for it.
pub const LOOK_EVERY: Duration = Duration::from_millis(1);

/// Which ends of which rings an endpoint has.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Side {
    /// Both: a ring per direction, `NAME.c2s` and `NAME.s2c` (`as=duplex`).
    Duplex,
    /// The writer of ring `NAME` (`as=pub`).
    Pub,
    /// A reader of ring `NAME` (`as=sub`).
    Sub,
}

/// A `shm://` endpoint, as parsed from a URI or built by hand.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ShmConfig {
    /// The name (the URI's authority).
    pub name: String,
    /// Which rings and ends (`as=`).
    pub side: Side,
    /// Whether the URI said `as=` (else [`Backend::one_way`] may choose).
    pub side_given: bool,
    /// Slots of a ring this endpoint writes, a power of two (`slots=`).
    pub slots: u32,
    /// Payload bytes per slot of a ring this endpoint writes (`size=`).
    pub slot_size: u32,
    /// Permissions of the files it creates (`perm=`, octal).
    pub perm: u32,
    /// Where the ring files live (`dir=`).
    pub dir: PathBuf,
    /// How receives wait (`rx=spin|block|adaptive`, `spins=`).
    pub strategy: RxStrategy,
    /// `cpu=`.
    pub cpu: Option<usize>,
}

const SHM_PARAMS: &[&str] = &[
    "as",
    "slots",
    "size",
    "perm",
    "dir",
    "rx",
    "spins",
    "busy_poll",
    "busy_budget",
    "prefer_busy_poll",
    "cpu",
];

impl ShmConfig {
    /// A duplex endpoint named `name` with the defaults, blocking receives.
    #[must_use]
    pub fn new(name: &str) -> Self {
        Self {
            name: name.to_string(),
            side: Side::Duplex,
            side_given: false,
            slots: DEFAULT_SLOTS,
            slot_size: DEFAULT_SLOT_SIZE,
            perm: DEFAULT_PERM,
            dir: PathBuf::from(DEFAULT_DIR),
            strategy: RxStrategy::Block,
            cpu: None,
        }
    }

    /// Reads a `shm://` URI.
    ///
    /// # Errors
    /// [`UriError`] naming the parameter at fault and what it accepts.
    pub fn from_uri(uri: &Uri) -> Result<Self, UriError> {
        if check_name(&uri.authority).is_err() {
            return Err(UriError::Malformed {
                uri: uri.text.clone(),
                reason: format!(
                    "shm:// takes a name of 1 to 64 letters, digits, '-' or '_', e.g. shm://md; \
                     found {:?}",
                    uri.authority
                ),
            });
        }
        let mut c = Self::new(&uri.authority);
        let mut p = uri.params(&[SHM_PARAMS]);
        let side = p.choice("as", &["duplex", "pub", "sub"])?;
        c.side_given = side.is_some();
        c.side = match side {
            Some("pub") => Side::Pub,
            Some("sub") => Side::Sub,
            _ => Side::Duplex,
        };
        if let Some(n) = p.get_with("slots", "a power of two from 2 to 16777216", |v| {
            crate::uri::parse_int(v).filter(|n| (2..=1 << 24).contains(n) && n & (n - 1) == 0)
        })? {
            c.slots = n as u32;
        }
        if let Some(n) = p.get_with("size", "a size from 8 bytes to 1M, e.g. 2048", |v| {
            crate::uri::parse_size(v).filter(|n| (8..=1 << 20).contains(n))
        })? {
            c.slot_size = n as u32;
        }
        let bytes = u64::from(c.slots) * file::geometry(c.slot_size).1 as u64;
        if bytes > file::MAX_RING_BYTES as u64 {
            return Err(UriError::BadValue {
                param: "slots".into(),
                value: format!("{} (with size={})", c.slots, c.slot_size),
                expected: format!(
                    "slots x size within {} MiB per ring: lower slots= or size=",
                    file::MAX_RING_BYTES >> 20
                ),
            });
        }
        if let Some(m) = p.get_with("perm", "octal file permissions from 0400 to 0666, e.g. 0660", |v| {
            u32::from_str_radix(v.trim_start_matches("0o"), 8)
                .ok()
                .filter(|m| m & 0o400 != 0 && m & 0o200 != 0 && *m & !0o666 == 0)
        })? {
            c.perm = m;
        }
        if let Some(d) = p.get_with("dir", "an absolute directory, e.g. /dev/shm", |v| {
            v.starts_with('/').then(|| PathBuf::from(v))
        })? {
            c.dir = d;
        }
        c.strategy = RxStrategy::from_params_without_device(&mut p, "shared memory")?;
        c.cpu = p.int("cpu", 0..=4095)?.map(|v| v as usize);
        p.finish()?;
        Ok(c)
    }

    /// The ring this endpoint writes and the ring it reads, for `role`.
    #[must_use]
    pub fn rings(&self, role: Role) -> (Option<String>, Option<String>) {
        let n = &self.name;
        match (self.side, role) {
            (Side::Pub, _) => (Some(n.clone()), None),
            (Side::Sub, _) => (None, Some(n.clone())),
            (Side::Duplex, Role::Server) => (Some(format!("{n}.s2c")), Some(format!("{n}.c2s"))),
            (Side::Duplex, Role::Client) => (Some(format!("{n}.c2s")), Some(format!("{n}.s2c"))),
        }
    }

    /// The largest message: a slot.
    #[must_use]
    pub fn max_message(&self) -> usize {
        self.slot_size as usize
    }
}

/// The writer of a broadcast ring.
#[derive(Debug)]
pub struct Publisher {
    ring: Arc<Mapped>,
    next: u64,
    scratch: Box<[u8]>,
    beat: Option<(std::sync::mpsc::Sender<()>, JoinHandle<()>)>,
    replaced: Option<RingInfo>,
    wakes: u64,
}

impl Publisher {
    /// Creates ring `name` in `dir` with `slots` slots of `slot_size`
    /// bytes and file permissions `perm`, taking over a stale ring of that
    /// name (its writer closed or dead).
    ///
    /// # Errors
    /// [`ShmError::WriterExists`] when a live writer has the ring, bad
    /// sizes or name, and file-system errors (named, with what to do).
    pub fn create(
        dir: &Path,
        name: &str,
        slots: u32,
        slot_size: u32,
        perm: u32,
    ) -> Result<Self, ShmError> {
        let (m, replaced) = file::create(
            dir,
            name,
            file::Shape {
                slots,
                slot_size,
                perm,
            },
        )?;
        let ring = Arc::new(m);
        let (tx, rx) = std::sync::mpsc::channel::<()>();
        let beating = ring.clone();
        let thread = std::thread::Builder::new()
            .name("hftnet-shm-beat".into())
            .spawn(move || {
                // Not the caller's pin or real-time policy: a spinning
                // SCHED_FIFO writer on one CPU would starve its heartbeat.
                let _ = hftnet_sys::sched::unpin_thread();
                let _ = hftnet_sys::sched::set_normal();
                while let Err(std::sync::mpsc::RecvTimeoutError::Timeout) =
                    rx.recv_timeout(file::HEARTBEAT)
                {
                    beating.beat();
                    beating.sweep_readers();
                }
            });
        let thread = match thread {
            Ok(t) => t,
            Err(e) => {
                ring.close();
                let _ = std::fs::remove_file(&ring.path);
                return Err(ShmError::Io {
                    what: "starting the heartbeat thread of",
                    path: ring.path.display().to_string(),
                    cause: e,
                    hint: "",
                });
            }
        };
        let size = ring.slot_size() as usize;
        Ok(Self {
            ring,
            next: 0,
            scratch: vec![0u8; size].into_boxed_slice(),
            beat: Some((tx, thread)),
            replaced,
            wakes: 0,
        })
    }

    /// The largest message.
    #[must_use]
    pub fn max_message(&self) -> usize {
        self.scratch.len()
    }

    /// Messages published so far.
    #[must_use]
    pub fn position(&self) -> u64 {
        self.next
    }

    /// The ring file.
    #[must_use]
    pub fn path(&self) -> &Path {
        &self.ring.path
    }

    /// The stale ring this writer took the name of, if any.
    #[must_use]
    pub fn replaced(&self) -> Option<&RingInfo> {
        self.replaced.as_ref()
    }

    /// The ring as `hftnet shm stat` shows it.
    #[must_use]
    pub fn info(&self) -> RingInfo {
        self.ring.info()
    }

    /// Publishes `data` as the next message. Never waits: a reader that
    /// falls a ring behind is lapped.
    ///
    /// # Errors
    /// `EMSGSIZE` when `data` is longer than a slot.
    #[inline]
    pub fn publish(&mut self, data: &[u8]) -> Result<(), SyscallError> {
        if data.len() > self.scratch.len() {
            return Err(too_long());
        }
        ring::write(&*self.ring, self.next, data);
        self.next += 1;
        self.wake_sleepers();
        Ok(())
    }

    /// Publishes the message `fill` writes into a buffer of a slot's size
    /// (returning its length).
    ///
    /// # Errors
    /// `EMSGSIZE` when `fill` returns more than a slot.
    #[inline]
    pub fn publish_with(&mut self, fill: impl FnOnce(&mut [u8]) -> usize) -> Result<(), SyscallError> {
        let len = fill(&mut self.scratch);
        if len > self.scratch.len() {
            return Err(too_long());
        }
        ring::write(&*self.ring, self.next, &self.scratch[..len]);
        self.next += 1;
        self.wake_sleepers();
        Ok(())
    }

    /// Wakes sleeping readers, when any reader may sleep (see the module doc).
    #[inline]
    fn wake_sleepers(&mut self) {
        let r = &*self.ring;
        if r.wake().may_sleep.load(Ordering::Relaxed) != 0 && ring::sleepers(r) {
            ring::bump(r);
            let _ = futex::wake(&r.wake().seq, Scope::Shared, u32::MAX);
            self.wakes += 1;
        }
    }
}

fn too_long() -> SyscallError {
    SyscallError::from_errno(
        "shm:// publish (message longer than a slot: the writer sets size=)",
        libc::EMSGSIZE,
    )
}

impl Drop for Publisher {
    fn drop(&mut self) {
        if let Some((tx, thread)) = self.beat.take() {
            drop(tx);
            let _ = thread.join();
        }
        // Unnamed first, under the directory lock, while still live (so no
        // new writer can have taken the name in between), then closed.
        if let Some(dir) = self.ring.path.parent()
            && let Ok(_lock) = file::DirLock::take(dir)
            && self.ring.still_named()
        {
            let _ = std::fs::remove_file(&self.ring.path);
        }
        self.ring.close();
    }
}

/// What a reader's poll found.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Poll {
    /// A message of this length (its first bytes, up to the buffer's
    /// length, are in the buffer).
    Message(usize),
    /// Nothing new.
    Empty,
    /// The reader was lapped: it missed this many messages and rejoined at
    /// the writer's position.
    Lapped {
        /// Messages missed.
        missed: u64,
    },
    /// The writer closed the ring and every message was read; the reader
    /// detached and looks for a new ring of the name.
    WriterClosed,
    /// The writer died (see [`WriterState::Dead`]); the reader detached and
    /// looks for a new ring of the name.
    WriterDead {
        /// Its pid.
        pid: u32,
        /// How long its heartbeat had been silent.
        silent_ms: u64,
    },
    /// No ring of the name exists (yet).
    NoRing,
}

/// A reader's counters.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct ReaderStats {
    /// Messages delivered.
    pub received: u64,
    /// Times lapped.
    pub lapped: u64,
    /// Messages missed by being lapped.
    pub missed: u64,
    /// Sleeps on the futex.
    pub sleeps: u64,
    /// Writers seen closing their ring.
    pub writers_closed: u64,
    /// Writers found dead.
    pub writers_dead: u64,
    /// Rings attached to (more than one: a new writer took over).
    pub attaches: u64,
}

/// A reader's place in one ring.
#[derive(Debug)]
struct Attached {
    ring: Arc<Mapped>,
    entry: usize,
    cursor: u64,
    blocking: bool,
    /// The first sleep after registering is bounded (module doc).
    slept: bool,
}

impl Drop for Attached {
    fn drop(&mut self) {
        if self.blocking {
            self.ring.wake().may_sleep.fetch_sub(1, Ordering::AcqRel);
        }
        self.ring.reader(self.entry).pid.store(0, Ordering::Release);
    }
}

/// A reader of a broadcast ring.
#[derive(Debug)]
pub struct Subscriber {
    dir: PathBuf,
    name: String,
    strategy: RxStrategy,
    at: Option<Attached>,
    last_look: Option<Instant>,
    next_check: Instant,
    stats: ReaderStats,
    /// It looked for the ring before and did not find it (or left one):
    /// a ring it attaches to now is read from its start.
    waited: bool,
    /// The ring it left (inode) and its cursor there.
    left: Option<(u64, u64)>,
    /// The last ring of the name found unusable, and why.
    last_error: Option<String>,
    /// The last look found a ring with no live writer.
    stale_seen: bool,
}

impl Subscriber {
    /// Attaches to ring `name` in `dir` now, reading from its head on.
    ///
    /// # Errors
    /// [`ShmError::NotFound`] when there is no such ring, [`ShmError::Format`]
    /// for a file of another format version or a broken one,
    /// [`ShmError::ReadersFull`], and file-system errors.
    pub fn attach(dir: &Path, name: &str, strategy: RxStrategy) -> Result<Self, ShmError> {
        let mut s = Self::waiting(dir, name, strategy)?;
        if s.look()? {
            Ok(s)
        } else if s.stale_seen {
            Err(ShmError::Stale {
                name: name.to_string(),
            })
        } else {
            Err(ShmError::NotFound {
                name: name.to_string(),
                dir: dir.display().to_string(),
            })
        }
    }

    /// A reader of ring `name` in `dir` that attaches when the ring appears
    /// (on its first receives). A ring that was not there when it first
    /// looked (or that replaced one whose writer left) is read from the
    /// oldest message still in it: a request sent before the reader
    /// attached is not lost.
    ///
    /// # Errors
    /// [`ShmError::BadName`].
    pub fn waiting(dir: &Path, name: &str, strategy: RxStrategy) -> Result<Self, ShmError> {
        file::check_name(
            name.strip_suffix(".c2s")
                .or_else(|| name.strip_suffix(".s2c"))
                .unwrap_or(name),
        )
        .map_err(|_| ShmError::BadName(name.to_string()))?;
        Ok(Self {
            dir: dir.to_path_buf(),
            name: name.to_string(),
            strategy,
            at: None,
            last_look: None,
            next_check: Instant::now() + file::HEARTBEAT,
            stats: ReaderStats::default(),
            waited: false,
            left: None,
            last_error: None,
            stale_seen: false,
        })
    }

    /// Attaches to the ring if it exists and has a live writer; a ring
    /// that is there but not usable is an error, kept for
    /// [`last_error`](Self::last_error).
    fn look(&mut self) -> Result<bool, ShmError> {
        self.last_look = Some(Instant::now());
        let m = match file::attach(&path_of(&self.dir, &self.name), &self.name) {
            Ok(m) => m,
            Err(ShmError::NotFound { .. }) => {
                self.waited = true;
                return Ok(false);
            }
            Err(e) => {
                self.last_error = Some(e.to_string());
                return Err(e);
            }
        };
        if !matches!(m.writer(), WriterState::Live { .. }) {
            // A stale ring: wait for a writer to take its name over.
            self.waited = true;
            self.stale_seen = true;
            return Ok(false);
        }
        let blocking = self.strategy != RxStrategy::Spin;
        let entry = m.claim_reader(blocking)?;
        if blocking {
            m.wake().may_sleep.fetch_add(1, Ordering::SeqCst);
        }
        let mut cursor = m.reader(entry).cursor.load(Ordering::Relaxed);
        if let Some((ino, at)) = self.left.take()
            && ino == m.ino
        {
            // The very ring this reader left (its writer was thought gone):
            // go on from where it was; a lap since then is counted as one.
            cursor = at.min(cursor);
            m.reader(entry).cursor.store(cursor, Ordering::Relaxed);
        } else if self.waited {
            // The ring appeared while this reader waited for it: every
            // message in it is new to the reader, so it starts at the
            // oldest still there; any overwritten before it came count as
            // missed.
            let start = cursor.saturating_sub(u64::from(m.slots()) - 1);
            let e = m.reader(entry);
            self.stats.missed = self.stats.missed.saturating_add(start);
            e.cursor.store(start, Ordering::Relaxed);
            e.missed.store(self.stats.missed, Ordering::Relaxed);
            cursor = start;
        }
        self.at = Some(Attached {
            ring: Arc::new(m),
            entry,
            cursor,
            blocking,
            slept: false,
        });
        self.stats.attaches += 1;
        self.next_check = Instant::now() + file::HEARTBEAT;
        self.last_error = None;
        self.stale_seen = false;
        Ok(true)
    }

    /// Why the ring of this name could not be attached to, the last time
    /// it was there but unusable (another format version, another user's,
    /// a full reader table); cleared by the next attach.
    #[must_use]
    pub fn last_error(&self) -> Option<&str> {
        self.last_error.as_deref()
    }

    /// Leaves the ring (its writer closed it or is gone), remembering where,
    /// in case the same ring turns out alive.
    fn detach(&mut self) {
        if let Some(a) = self.at.take() {
            self.left = Some((a.ring.ino, a.cursor));
        }
        self.waited = true;
    }

    /// The reader's counters.
    #[must_use]
    pub fn stats(&self) -> ReaderStats {
        self.stats
    }

    /// Whether it is attached to a ring now.
    #[must_use]
    pub fn attached(&self) -> bool {
        self.at.is_some()
    }

    /// The ring as `hftnet shm stat` shows it, when attached.
    #[must_use]
    pub fn info(&self) -> Option<RingInfo> {
        self.at.as_ref().map(|a| a.ring.info())
    }

    /// The largest message of the ring attached to.
    #[must_use]
    pub fn max_message(&self) -> Option<usize> {
        self.at.as_ref().map(|a| a.ring.slot_size() as usize)
    }

    /// Takes the next message into `out` if there is one, without waiting.
    /// Unattached, it looks for the ring (at most every [`LOOK_EVERY`]).
    /// `out` is scratch: its first 128 bytes may be written (with a copy
    /// thrown away) whatever the poll returns.
    #[inline]
    pub fn try_recv(&mut self, out: &mut [u8]) -> Poll {
        let Some(a) = self.at.as_mut() else {
            return self.try_recv_unattached(out);
        };
        match ring::read(&*a.ring, a.cursor, out) {
            Read::Got(len) => {
                a.cursor = a.cursor.wrapping_add(1);
                self.stats.received += 1;
                let e = a.ring.reader(a.entry);
                e.cursor.store(a.cursor, Ordering::Relaxed);
                e.received.store(self.stats.received, Ordering::Relaxed);
                Poll::Message(len)
            }
            Read::Empty => {
                ring::touch(&*a.ring, a.cursor);
                Poll::Empty
            }
            Read::Lapped => {
                let (at, missed) = ring::rejoin(&*a.ring, a.cursor);
                a.cursor = at;
                self.stats.lapped += 1;
                self.stats.missed = self.stats.missed.saturating_add(missed);
                let e = a.ring.reader(a.entry);
                e.cursor.store(at, Ordering::Relaxed);
                e.lapped.store(self.stats.lapped, Ordering::Relaxed);
                e.missed.store(self.stats.missed, Ordering::Relaxed);
                Poll::Lapped { missed }
            }
        }
    }

    /// [`try_recv`](Self::try_recv) without a ring: looks for it (at most
    /// every [`LOOK_EVERY`]). An unusable ring is kept in `last_error` (the
    /// transport reports it); the reader goes on looking.
    #[cold]
    #[inline(never)]
    fn try_recv_unattached(&mut self, out: &mut [u8]) -> Poll {
        if self.last_look.is_some_and(|t| t.elapsed() < LOOK_EVERY) {
            return Poll::NoRing;
        }
        match self.look() {
            Ok(true) => self.try_recv(out),
            _ => Poll::NoRing,
        }
    }

    /// Checks the writer; detaches from a closed (and drained) or dead one.
    fn check_writer(&mut self) -> Poll {
        self.next_check = Instant::now() + file::HEARTBEAT;
        let Some(a) = &self.at else {
            return Poll::NoRing;
        };
        match a.ring.writer() {
            WriterState::Live { .. } => Poll::Empty,
            WriterState::Closed => {
                if ring::ready(&*a.ring, a.cursor) {
                    return Poll::Empty;
                }
                self.detach();
                self.stats.writers_closed += 1;
                Poll::WriterClosed
            }
            WriterState::Dead { pid, silent_ms } => {
                if ring::ready(&*a.ring, a.cursor) {
                    return Poll::Empty;
                }
                self.detach();
                self.stats.writers_dead += 1;
                Poll::WriterDead { pid, silent_ms }
            }
        }
    }

    /// Sleeps until the writer publishes message `cursor`, wakes us, or
    /// `left` (bounded by the heartbeat period) passes.
    fn sleep(&mut self, left: Option<Duration>) -> Result<(), SyscallError> {
        let Some(a) = self.at.as_mut() else {
            std::thread::sleep(left.map_or(LOOK_EVERY, |l| l.min(LOOK_EVERY)));
            return Ok(());
        };
        let bound = if a.slept {
            file::HEARTBEAT
        } else {
            FIRST_SLEEP
        };
        let left = left.map_or(bound, |l| l.min(bound));
        // `asleep` is raised only once this reader's count is in `waiters`
        // and lowered before it is taken back, so a sweep that finds it
        // raised on a dead reader takes back exactly that count (a reader
        // killed in between leaves one count: extra wake-ups, never a lost
        // one).
        let entry = a.ring.reader(a.entry);
        let Some(seen) = ring::prepare_sleep(&*a.ring, a.cursor) else {
            return Ok(());
        };
        entry.asleep.store(1, Ordering::Release);
        a.slept = true;
        let w = a.ring.wake();
        self.stats.sleeps += 1;
        let r = Deadline::after(left).and_then(|d| futex::wait(&w.seq, seen, Scope::Shared, Some(d)));
        entry.asleep.store(0, Ordering::Release);
        ring::end_sleep(&*a.ring);
        r.map(|_| ())
    }

    /// Waits per the receive strategy until [`try_recv`](Self::try_recv)
    /// has something other than [`Poll::Empty`] or [`Poll::NoRing`], or
    /// `deadline` passes (then `Empty`, or `NoRing` while unattached).
    ///
    /// # Errors
    /// A futex wait failing (not a timeout or a signal).
    pub fn recv(&mut self, out: &mut [u8], deadline: Option<Instant>) -> Result<Poll, SyscallError> {
        let mut w = RingWait::new(self.strategy, deadline);
        let mut polls = 0u32;
        loop {
            let p = self.try_recv(out);
            if !matches!(p, Poll::Empty | Poll::NoRing) {
                return Ok(p);
            }
            polls = polls.wrapping_add(1);
            if self.at.is_some() && polls.is_multiple_of(4096) && Instant::now() >= self.next_check {
                let c = self.check_writer();
                if c != Poll::Empty {
                    return Ok(c);
                }
            }
            match w.after_empty_poll() {
                Wait::Again => {}
                Wait::TimedOut => return Ok(p),
                Wait::Sleep(left) => {
                    self.sleep(left)?;
                    // A close wakes sleepers: look at once, not at the next check.
                    let closed = self.at.as_ref().is_some_and(|a| a.ring.closed());
                    if self.at.is_some() && (closed || Instant::now() >= self.next_check) {
                        let c = self.check_writer();
                        if c != Poll::Empty {
                            return Ok(c);
                        }
                    }
                }
            }
        }
    }
}

/// The `shm://` backend.
#[derive(Debug)]
pub struct ShmBackend;

impl Backend for ShmBackend {
    const SCHEMES: &'static [&'static str] = &["shm"];
    type Config = ShmConfig;
    type Transport = ShmTransport;
    type Caps = ShmCaps;

    fn parse(uri: &Uri) -> Result<ShmConfig, UriError> {
        ShmConfig::from_uri(uri)
    }

    fn open(cfg: &ShmConfig, role: Role) -> Result<ShmTransport, OpenError> {
        ShmTransport::open(cfg, role)
    }

    fn max_message(cfg: &ShmConfig) -> usize {
        cfg.max_message()
    }

    fn burst(_: &ShmConfig) -> usize {
        32
    }

    fn cpu(cfg: &ShmConfig) -> Option<usize> {
        cfg.cpu
    }

    fn placement(_: &str) -> Placement {
        Placement::SameHost
    }

    fn one_way(cfg: &mut ShmConfig, way: OneWay) {
        if !cfg.side_given {
            cfg.side = match way {
                OneWay::Publish => Side::Pub,
                OneWay::Subscribe => Side::Sub,
            };
        }
    }

    fn rungs(_: &str, ctx: &RungContext<'_>) -> Vec<RungSpec> {
        let pid = std::process::id();
        ["spin", "block"]
            .iter()
            .enumerate()
            .map(|(i, s)| {
                RungSpec::same(
                    s,
                    format!(
                        "shm://{LADDER_PREFIX}{pid}-{}?rx={s}&slots=1024&size=2048",
                        u32::from(ctx.port) + i as u32
                    ),
                )
            })
            .collect()
    }
}

/// The `shm://` section of the capabilities.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ShmCaps {
    /// The endpoint's name.
    pub name: String,
    /// Which ends it has.
    pub side: Side,
    /// The directory of its rings.
    pub dir: String,
    /// The ring it writes.
    pub tx_ring: Option<String>,
    /// The ring it reads.
    pub rx_ring: Option<String>,
    /// Slots of the ring it writes (or reads).
    pub slots: u32,
    /// Payload bytes per slot.
    pub slot_size: u32,
    /// Messages it published.
    pub published: u64,
    /// Futex wake-ups it made for sleeping readers.
    pub wakes: u64,
    /// Whether its reader is attached to a ring now.
    pub rx_attached: bool,
    /// The reader's counters (overruns: `lapped`, `missed`).
    pub reader: ReaderStats,
    /// A stale ring the writer took the name of (its dead writer's pid).
    pub replaced_stale_writer: Option<u32>,
}

impl CapsSection for ShmCaps {
    fn lines(&self, out: &mut Vec<(String, String)>) {
        out.push((
            "shm".into(),
            format!(
                "{:?} in {}: writes {}, reads {}; {} slots of {} bytes; lapped {} times, {} \
                 messages missed",
                self.name,
                self.dir,
                self.tx_ring.as_deref().unwrap_or("nothing"),
                self.rx_ring.as_deref().unwrap_or("nothing"),
                self.slots,
                self.slot_size,
                self.reader.lapped,
                self.reader.missed
            ),
        ));
    }
}

/// One end of `shm://`: a writer, a reader, or both (duplex).
#[derive(Debug)]
pub struct ShmTransport {
    cfg: ShmConfig,
    tx: Option<Publisher>,
    rx: Option<Subscriber>,
    rx_name: Option<String>,
    tx_name: Option<String>,
    /// A buffer for receive leases (a slot's size).
    lend: Box<[u8]>,
    timeout: Option<Duration>,
    notes: Vec<String>,
}

/// The transmit side of a `shm://` lease: the writer, if this end has one.
#[derive(Debug)]
pub struct ShmTx<'a> {
    tx: Option<&'a mut Publisher>,
}

fn shm_open_err(step: String, e: ShmError) -> OpenError {
    let errno = match &e {
        ShmError::WriterExists { .. } => libc::EADDRINUSE,
        ShmError::NotFound { .. } => libc::ENOENT,
        ShmError::ReadersFull { .. } => libc::EUSERS,
        ShmError::Io { cause, .. } => cause.raw_os_error().unwrap_or(libc::EIO),
        _ => libc::EINVAL,
    };
    OpenError::Setup {
        step: format!("{step}: {e}"),
        cause: SyscallError::from_errno("shm://", errno),
    }
}

fn no_side(what: &'static str) -> SyscallError {
    SyscallError::from_errno(what, libc::EOPNOTSUPP)
}

impl ShmTransport {
    /// Opens the `role` end of `cfg`: creates the ring it writes (taking
    /// over a stale one) and a reader of the ring it reads, which attaches
    /// as soon as that ring exists.
    ///
    /// # Errors
    /// [`OpenError::Setup`] naming the ring and what to do: a live writer
    /// already on the ring, a full or missing directory, a file of another
    /// format.
    pub fn open(cfg: &ShmConfig, role: Role) -> Result<Self, OpenError> {
        let (tx_name, rx_name) = cfg.rings(role);
        let tx = match &tx_name {
            Some(n) => Some(
                Publisher::create(&cfg.dir, n, cfg.slots, cfg.slot_size, cfg.perm)
                    .map_err(|e| shm_open_err(format!("creating shm ring {n}"), e))?,
            ),
            None => None,
        };
        let rx = match &rx_name {
            Some(n) => {
                let mut s = Subscriber::waiting(&cfg.dir, n, cfg.strategy)
                    .map_err(|e| shm_open_err(format!("reading shm ring {n}"), e))?;
                // A ring that is there but unusable is an error now, not a
                // silent wait.
                match s.look() {
                    Ok(_) => {}
                    Err(e) => return Err(shm_open_err(format!("attaching to shm ring {n}"), e)),
                }
                Some(s)
            }
            None => None,
        };
        let mut notes = vec![format!(
            "shared-memory rings in {}: writes {}, reads {}; readers copy each message out of \
             its slot (seqlock check), leases lend that copy",
            cfg.dir.display(),
            tx_name.as_deref().unwrap_or("nothing"),
            rx_name.as_deref().unwrap_or("nothing"),
        )];
        if let Some(r) = tx.as_ref().and_then(Publisher::replaced) {
            notes.push(format!(
                "took over the stale ring {} ({})",
                r.name,
                match r.writer {
                    WriterState::Dead { pid, .. } => format!("its writer, pid {pid}, is dead"),
                    _ => "closed".into(),
                }
            ));
        }
        let size = cfg.slot_size.max(tx.as_ref().map_or(0, |t| t.max_message() as u32));
        Ok(Self {
            cfg: cfg.clone(),
            tx,
            rx,
            rx_name,
            tx_name,
            lend: vec![0u8; size.max(LEND_MIN) as usize].into_boxed_slice(),
            timeout: None,
            notes,
        })
    }

    /// The writer, when this end has one.
    pub fn publisher(&mut self) -> Option<&mut Publisher> {
        self.tx.as_mut()
    }

    /// The reader, when this end has one.
    pub fn subscriber(&mut self) -> Option<&mut Subscriber> {
        self.rx.as_mut()
    }

    /// Waits for the first message into `out` (`deadline`, else the receive
    /// timeout); laps are counted and waited past; a dead writer is an
    /// error (once); `Ok(None)` when nothing came in time.
    fn first(
        rx: &mut Subscriber,
        out: &mut [u8],
        deadline: Option<Instant>,
    ) -> Result<Option<usize>, SyscallError> {
        let mut laps = 0u32;
        loop {
            match rx.recv(out, deadline)? {
                Poll::Message(n) => return Ok(Some(n)),
                Poll::Lapped { .. } => {
                    // Counted in the capabilities (`reader.lapped`,
                    // `reader.missed`); a ring that laps every read is
                    // broken or hostile, not slow.
                    laps += 1;
                    if laps >= MAX_LAPS_IN_A_ROW {
                        return Err(SyscallError::from_errno(
                            "shm:// receive (lapped on every read: the ring's sequence words \
                             are corrupt, or its writer is hostile)",
                            libc::EPROTO,
                        ));
                    }
                    if deadline.is_some_and(|d| Instant::now() >= d) {
                        return Ok(None);
                    }
                }
                Poll::WriterClosed => {}
                Poll::WriterDead { .. } => {
                    return Err(SyscallError::from_errno(
                        "shm:// receive (the ring's writer died: its process ended without \
                         closing the ring; waiting for a new writer)",
                        libc::ECONNRESET,
                    ));
                }
                Poll::Empty | Poll::NoRing => {
                    if rx.at.is_none() && rx.last_error.is_some() {
                        return Err(SyscallError::from_errno(
                            "shm:// receive (the ring of this name is not usable: see the \
                             capabilities' notes)",
                            libc::EPROTO,
                        ));
                    }
                    return Ok(None);
                }
            }
        }
    }

    fn recv_impl(
        &mut self,
        burst: &mut RxBurst,
        deadline: Option<Instant>,
    ) -> Result<usize, SyscallError> {
        burst.set_len(0);
        let Some(rx) = self.rx.as_mut() else {
            return Err(no_side("shm:// receive (as=pub only writes: open as=sub or duplex to read)"));
        };
        let deadline = deadline.or_else(|| self.timeout.map(|t| Instant::now() + t));
        let cap = burst.capacity();
        let mut n = 0;
        while n < cap {
            let slot = burst.slots_from(n).next().expect("n < capacity");
            let got = if n == 0 {
                Self::first(rx, slot, deadline)?
            } else {
                match rx.try_recv(slot) {
                    Poll::Message(len) => Some(len),
                    // Counted; the burst ends here (the caller sees what it got).
                    _ => None,
                }
            };
            let Some(len) = got else { break };
            let kept = len.min(slot.len());
            burst.set(
                n,
                RxMeta {
                    len: kept,
                    wire_len: len,
                    truncated: kept < len,
                    ..RxMeta::default()
                },
            );
            n += 1;
        }
        burst.set_len(n);
        Ok(n)
    }
}

impl TxLease for ShmTx<'_> {
    #[inline]
    fn send_with(
        &mut self,
        _to: Option<SocketAddr>,
        fill: impl FnOnce(&mut [u8]) -> usize,
    ) -> Result<(), SyscallError> {
        match self.tx.as_mut() {
            Some(p) => p.publish_with(fill),
            None => Err(no_side("shm:// send (as=sub only reads: open as=pub or duplex to write)")),
        }
    }

    fn max_message(&self) -> usize {
        self.tx.as_ref().map_or(0, |p| p.max_message())
    }
}

impl Transport for ShmTransport {
    #[inline]
    fn recv_burst(&mut self, burst: &mut RxBurst) -> Result<usize, SyscallError> {
        self.recv_impl(burst, None)
    }

    #[inline]
    fn recv_burst_until(
        &mut self,
        burst: &mut RxBurst,
        deadline: Instant,
    ) -> Result<usize, SyscallError> {
        self.recv_impl(burst, Some(deadline))
    }

    #[inline]
    fn send_burst(&mut self, msgs: &[TxMsg<'_>]) -> Result<usize, SyscallError> {
        let Some(tx) = self.tx.as_mut() else {
            return Err(no_side("shm:// send (as=sub only reads: open as=pub or duplex to write)"));
        };
        for (i, m) in msgs.iter().enumerate() {
            if let Err(e) = tx.publish(m.data) {
                return if i == 0 { Err(e) } else { Ok(i) };
            }
        }
        Ok(msgs.len())
    }

    fn set_recv_timeout(&mut self, timeout: Option<Duration>) -> Result<(), SyscallError> {
        self.timeout = timeout;
        Ok(())
    }

    fn capabilities(&self) -> Capabilities {
        let (slots, slot_size) = match (&self.tx, self.rx.as_ref().and_then(|r| r.at.as_ref())) {
            (Some(p), _) => (p.ring.slots(), p.ring.slot_size()),
            (None, Some(a)) => (a.ring.slots(), a.ring.slot_size()),
            (None, None) => (self.cfg.slots, self.cfg.slot_size),
        };
        Capabilities {
            transport: "shm",
            rx_strategy: self.cfg.strategy.name(),
            local: None,
            peer: None,
            max_message: slot_size as usize,
            mode: CopyMode::Copy,
            lease: LeaseMode::Copied,
            burst: 32,
            backend: Some(
                ShmCaps {
                    name: self.cfg.name.clone(),
                    side: self.cfg.side,
                    dir: self.cfg.dir.display().to_string(),
                    tx_ring: self.tx_name.clone(),
                    rx_ring: self.rx_name.clone(),
                    slots,
                    slot_size,
                    published: self.tx.as_ref().map_or(0, Publisher::position),
                    wakes: self.tx.as_ref().map_or(0, |p| p.wakes),
                    rx_attached: self.rx.as_ref().is_some_and(Subscriber::attached),
                    reader: self.rx.as_ref().map(Subscriber::stats).unwrap_or_default(),
                    replaced_stale_writer: self.tx.as_ref().and_then(|p| {
                        p.replaced().and_then(|r| match r.writer {
                            WriterState::Dead { pid, .. } => Some(pid),
                            _ => None,
                        })
                    }),
                }
                .into(),
            ),
            middleware: None,
            notes: {
                let mut n = self.notes.clone();
                if let Some(e) = self.rx.as_ref().and_then(Subscriber::last_error) {
                    n.push(format!("the ring to read is not usable: {e}"));
                }
                n
            },
        }
    }
}

impl Lease for ShmTransport {
    const IN_PLACE: bool = false;
    type Tx<'a> = ShmTx<'a>;

    #[inline]
    fn recv_lease<F>(
        &mut self,
        max: usize,
        deadline: Option<Instant>,
        mut f: F,
    ) -> Result<usize, SyscallError>
    where
        F: FnMut(&[u8], &RxMeta, &mut Self::Tx<'_>),
    {
        let Some(rx) = self.rx.as_mut() else {
            return Err(no_side("shm:// receive (as=pub only writes: open as=sub or duplex to read)"));
        };
        let deadline = deadline.or_else(|| self.timeout.map(|t| Instant::now() + t));
        let mut tx = ShmTx {
            tx: self.tx.as_mut(),
        };
        let mut n = 0;
        while n < max.max(1) {
            let got = if n == 0 {
                Self::first(rx, &mut self.lend, deadline)?
            } else {
                match rx.try_recv(&mut self.lend) {
                    Poll::Message(len) => Some(len),
                    _ => None,
                }
            };
            let Some(len) = got else { break };
            let kept = len.min(self.lend.len());
            let meta = RxMeta {
                len: kept,
                wire_len: len,
                truncated: kept < len,
                ..RxMeta::default()
            };
            f(&self.lend[..kept], &meta, &mut tx);
            n += 1;
        }
        Ok(n)
    }

    #[inline]
    fn send_lease<R>(&mut self, f: impl FnOnce(&mut Self::Tx<'_>) -> R) -> Result<R, SyscallError> {
        Ok(f(&mut ShmTx {
            tx: self.tx.as_mut(),
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Endpoint;

    #[test]
    fn uri_parameters_and_one_way() {
        let c = ShmConfig::from_uri(&Uri::parse("shm://md").unwrap()).unwrap();
        assert_eq!((c.side, c.slots, c.slot_size, c.perm), (Side::Duplex, 4096, 2048, 0o600));
        assert_eq!(c.rings(Role::Server), (Some("md.s2c".into()), Some("md.c2s".into())));
        assert_eq!(c.rings(Role::Client), (Some("md.c2s".into()), Some("md.s2c".into())));
        let c = ShmConfig::from_uri(
            &Uri::parse("shm://a_b-1?as=sub&slots=64&size=100&perm=0640&dir=/tmp&rx=spin&cpu=1")
                .unwrap(),
        )
        .unwrap();
        assert_eq!((c.side, c.slots, c.slot_size, c.perm), (Side::Sub, 64, 100, 0o640));
        assert_eq!((c.dir.as_path(), c.strategy, c.cpu), (Path::new("/tmp"), RxStrategy::Spin, Some(1)));
        assert_eq!(c.rings(Role::Server), (None, Some("a_b-1".into())));
        // The URI's size limit is the one creation applies: 2^24 slots of
        // 8 bytes make exactly 1 GiB of slots.
        assert!(ShmConfig::from_uri(&Uri::parse("shm://x?slots=16777216&size=8").unwrap()).is_ok());
        assert!(ShmConfig::from_uri(&Uri::parse("shm://x?slots=16777216&size=64").unwrap()).is_err());

        // One-way: a duplex URI becomes the writer or a reader of ring "md";
        // an explicit as= stays.
        let pubd = Endpoint::parse("shm://md").unwrap().one_way(OneWay::Publish);
        let crate::EndpointConfig::Shm(c) = &pubd.config else { panic!() };
        assert_eq!(c.rings(Role::Client), (Some("md".into()), None));
        let subd = Endpoint::parse("shm://md").unwrap().one_way(OneWay::Subscribe);
        let crate::EndpointConfig::Shm(c) = &subd.config else { panic!() };
        assert_eq!(c.rings(Role::Server), (None, Some("md".into())));
        let kept = Endpoint::parse("shm://md?as=duplex").unwrap().one_way(OneWay::Publish);
        let crate::EndpointConfig::Shm(c) = &kept.config else { panic!() };
        assert_eq!(c.side, Side::Duplex);
        // Sockets are unchanged.
        let u = Endpoint::parse("udp://127.0.0.1:9").unwrap();
        assert_eq!(u.clone().one_way(OneWay::Publish), u);
    }
}
