//! A broadcast ring as a file in shared memory (`/dev/shm/hftnet-shm.NAME`):
//! its layout, creation by the writer, attachment by readers with the
//! format checked, the reader table, the writer's heartbeat, and the
//! listing, inspection and removal of rings by name.
//!
//! Layer: under [`super::Publisher`] and [`super::Subscriber`]; the
//! protocol itself is [`super::ring`]. Ring code: `unsafe` turns offsets
//! of the mapping into references to the atomics placed there.
//!
//! Layout (all little-endian, offsets in bytes):
//! ```text
//! 0      identity (one line, written before the file is given its name, never again):
//!        magic "HFTNSHM\0", format version, header length, slots, slot size,
//!        slot stride, reader entries, writer pid, creation time
//! 64     head: messages published (the writer's position)          [writer, each message]
//! 128    state (live/closed) and heartbeat (CLOCK_MONOTONIC ns)     [writer, every 100 ms]
//! 192    futex word, sleeping readers, readers that may sleep        [readers; writer wakes]
//! 256    64 reader entries of one line: pid, blocking, asleep,      [each reader its own]
//!        cursor, received, lapped, missed, attach time
//! 8192   slots of `stride` bytes: sequence word, length, payload words
//! ```
//! Each group sits on its own 64-byte line, so the writer's per-message
//! stores and a reader's own counters never share a line with anything
//! another process writes on the hot path.
//!
//! Invariants that make the references sound:
//! - the mapping covers the whole file and the file's size is checked
//!   against the identity at attach, so every offset computed from the
//!   (copied, validated) identity is inside it; the file is sized and its
//!   storage allocated (`fallocate`) before anything maps it, so a full
//!   `/dev/shm` is an error at creation, not a `SIGBUS` later;
//! - everything shared after creation is an atomic; the identity is read
//!   once with a volatile copy and only the validated copy is used;
//! - a ring is made unnamed (`O_TMPFILE`) and given its name (`linkat`)
//!   only once its header is complete, so a reader never sees a half-made
//!   ring and a creator killed half way leaves nothing;
//! - `/dev/shm` is writable by every user: only rings of our own user (or
//!   root's) are used; another user's file under a ring's name is refused.
//!   A process of our own user that truncates a ring under a mapping can
//!   still fault its readers (`SIGBUS`): the trust boundary is the user.
//!
//! Liveness: the writer holds an exclusive `flock` on its ring for its
//! whole life; the kernel drops it when the process ends, however it ends,
//! so "a shared lock can be taken" means "no writer" — immune to a writer
//! starved of CPU or in another PID namespace. The heartbeat (stamped by a
//! thread of the writer every 100 ms, which also sweeps the entries of dead
//! readers) is shown by `stat` and decides only on a file system without
//! `flock`. Making, taking over and removing a ring happen under an
//! exclusive `flock` of the directory, so no two processes act on one name
//! at once.

#![allow(unsafe_code)]

use std::fs::{File, OpenOptions};
use std::os::fd::AsFd;
use std::os::unix::fs::{MetadataExt, OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};
use std::time::Duration;

use hftnet_sys::SyscallError;
use hftnet_sys::futex::Deadline;
use hftnet_sys::mmap::Mapping;
use serde::Serialize;

use super::ring::RingMem;

/// The first eight bytes of every ring file.
pub const MAGIC: [u8; 8] = *b"HFTNSHM\0";
/// The layout version this build writes and reads; a ring of another
/// version is refused at attach, naming both.
pub const FORMAT_VERSION: u32 = 1;
/// Reader entries in the header: readers attached at once.
pub const MAX_READERS: usize = 64;
/// Bytes before the first slot.
pub const HEADER_LEN: usize = 8192;
/// Ring files are named this, then the ring's name.
pub const FILE_PREFIX: &str = "hftnet-shm.";
/// Where rings live unless `dir=` says otherwise.
pub const DEFAULT_DIR: &str = "/dev/shm";
/// How often the writer's heartbeat is stamped.
pub const HEARTBEAT: Duration = Duration::from_millis(100);
/// A heartbeat this old means the writer is gone (hung, stopped, or dead
/// in another PID namespace); a writer whose process no longer exists is
/// called dead once its heartbeat is three beats old.
pub const DEAD_AFTER: Duration = Duration::from_secs(1);
/// The largest slot area of a ring (slots x stride).
pub const MAX_RING_BYTES: usize = 1 << 30;
/// The largest payload of a slot.
pub const MAX_SLOT_SIZE: u32 = 1 << 20;

const STATE_LIVE: u32 = 1;
const STATE_CLOSED: u32 = 2;
const LINE: usize = 64;
/// Slot header: sequence word (8), length (4), reserved (4).
const SLOT_HEADER: usize = 16;

/// The identity line, as written at creation.
#[repr(C, align(64))]
#[derive(Debug, Clone, Copy)]
struct Identity {
    magic: [u8; 8],
    version: u32,
    header_len: u32,
    slots: u32,
    slot_size: u32,
    stride: u32,
    max_readers: u32,
    writer_pid: u32,
    _reserved: u32,
    created_unix_ns: u64,
}

#[repr(C, align(64))]
struct HeadLine {
    head: AtomicU64,
}

#[repr(C, align(64))]
struct LifeLine {
    state: AtomicU32,
    _reserved: AtomicU32,
    heartbeat_ns: AtomicU64,
}

/// The readers' wake-up line.
#[repr(C, align(64))]
pub(super) struct WakeLine {
    /// The futex word: bumped by the writer to wake sleepers.
    pub seq: AtomicU32,
    /// Readers sleeping or about to.
    pub waiters: AtomicU32,
    /// Readers that may sleep (not spinning): the writer checks for
    /// sleepers only when this is not zero.
    pub may_sleep: AtomicU32,
}

/// One reader's entry (its own line).
#[repr(C, align(64))]
pub(super) struct ReaderEntry {
    /// The reader's pid; 0: free.
    pub pid: AtomicU32,
    /// 1 when the reader may sleep.
    pub blocking: AtomicU32,
    /// 1 while the reader is about to sleep or asleep (shown by `stat`).
    pub asleep: AtomicU32,
    _reserved: AtomicU32,
    /// Next message the reader reads.
    pub cursor: AtomicU64,
    /// Messages delivered.
    pub received: AtomicU64,
    /// Times the reader was lapped.
    pub lapped: AtomicU64,
    /// Messages the reader missed when lapped.
    pub missed: AtomicU64,
    /// When it attached (CLOCK_MONOTONIC ns).
    pub attached_ns: AtomicU64,
}

#[repr(C)]
struct Header {
    id: Identity,
    head: HeadLine,
    life: LifeLine,
    wake: WakeLine,
    readers: [ReaderEntry; MAX_READERS],
}

const _: () = assert!(std::mem::size_of::<Identity>() == LINE);
const _: () = assert!(std::mem::size_of::<ReaderEntry>() == LINE);
const _: () = assert!(std::mem::size_of::<Header>() <= HEADER_LEN);
const _: () = assert!(std::mem::offset_of!(Header, head) == LINE);
const _: () = assert!(std::mem::offset_of!(Header, readers) == 4 * LINE);

/// Why a ring could not be made, opened or used.
#[derive(Debug, thiserror::Error)]
pub enum ShmError {
    /// A ring name is not a plain name.
    #[error(
        "bad shm ring name {0:?}: use 1 to 64 letters, digits, '-' or '_' (e.g. shm://md)"
    )]
    BadName(String),
    /// Sizes out of range.
    #[error("{0}")]
    BadSize(String),
    /// No ring of that name.
    #[error(
        "no shm ring {name:?} in {dir} (is its writer running? `hftnet shm list` shows the rings)"
    )]
    NotFound {
        /// The ring.
        name: String,
        /// The directory searched.
        dir: String,
    },
    /// The ring is there but its writer is gone.
    #[error(
        "shm ring {name:?} has no live writer (it closed the ring or died); start its writer, or \
         remove the stale ring with `hftnet shm rm {name}`"
    )]
    Stale {
        /// The ring.
        name: String,
    },
    /// The ring has a live writer already.
    #[error(
        "shm ring {name:?} already has a live writer (pid {pid}): a ring has one writer; stop it, \
         or pick another name"
    )]
    WriterExists {
        /// The ring.
        name: String,
        /// Its writer.
        pid: u32,
    },
    /// The file is not a ring of this build's format.
    #[error(
        "{path} is not a usable shm ring: {reason}; if it is stale, remove it with \
         `hftnet shm rm {name} --force`"
    )]
    Format {
        /// The file.
        path: String,
        /// The ring's name.
        name: String,
        /// What is wrong.
        reason: String,
    },
    /// Every reader entry is taken by a live reader.
    #[error(
        "shm ring {name:?} has {MAX_READERS} readers attached already; detach one (`hftnet shm \
         stat {name}` lists them)"
    )]
    ReadersFull {
        /// The ring.
        name: String,
    },
    /// A file-system or mapping call failed.
    #[error("{what} {path}: {cause}{hint}")]
    Io {
        /// What was being done.
        what: &'static str,
        /// The file.
        path: String,
        /// The system's answer.
        cause: std::io::Error,
        /// What to do about it.
        hint: &'static str,
    },
}

fn io_err(what: &'static str, path: &Path, cause: std::io::Error) -> ShmError {
    let hint = match cause.raw_os_error() {
        Some(libc::EACCES | libc::EPERM) => {
            " (the ring belongs to another user, or its permissions (perm=) do not let you in)"
        }
        Some(libc::ENOSPC | libc::ENOMEM) => {
            " (the shared-memory file system is full: lower slots= or size=, or remove stale \
             rings with `hftnet shm list` / `hftnet shm rm`)"
        }
        Some(libc::ELOOP) => " (a symbolic link where a ring was expected: refused)",
        Some(libc::ENOENT) => " (does the directory exist?)",
        _ => "",
    };
    ShmError::Io {
        what,
        path: path.display().to_string(),
        cause,
        hint,
    }
}

fn sys_err(what: &'static str, path: &Path, e: &SyscallError) -> ShmError {
    io_err(
        what,
        path,
        std::io::Error::from_raw_os_error(e.errno().unwrap_or(libc::EIO)),
    )
}

/// Checks a ring name.
///
/// # Errors
/// [`ShmError::BadName`].
pub fn check_name(name: &str) -> Result<(), ShmError> {
    let ok = (1..=64).contains(&name.len())
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if ok {
        Ok(())
    } else {
        Err(ShmError::BadName(name.to_string()))
    }
}

/// Checks a ring file's name (a ring name, or one with `.c2s`/`.s2c`).
fn check_ring_name(name: &str) -> Result<(), ShmError> {
    let base = name
        .strip_suffix(".c2s")
        .or_else(|| name.strip_suffix(".s2c"))
        .unwrap_or(name);
    check_name(base).map_err(|_| ShmError::BadName(name.to_string()))
}

/// The file of ring `name` in `dir`.
#[must_use]
pub fn path_of(dir: &Path, name: &str) -> PathBuf {
    dir.join(format!("{FILE_PREFIX}{name}"))
}

/// Payload bytes per slot rounded to whole words, and the slot stride.
pub(super) fn geometry(slot_size: u32) -> (u32, usize) {
    let size = slot_size.div_ceil(8) * 8;
    let stride = (SLOT_HEADER + size as usize).div_ceil(LINE) * LINE;
    (size, stride)
}

/// CLOCK_MONOTONIC now in ns (shared by every process of the machine).
pub(super) fn monotonic_ns() -> u64 {
    Deadline::now().map_or(0, |d| d.as_monotonic().as_nanos() as u64)
}

/// A ring's file, mapped.
#[derive(Debug)]
pub(super) struct Mapped {
    map: Mapping,
    /// The open file: the writer holds an exclusive `flock` on it for its
    /// whole life (the kernel drops it when the process dies, however it
    /// dies); readers test it to tell a live writer from a dead one.
    file: File,
    id: Identity,
    /// The file's inode, to tell this ring from a newer one of the same name.
    pub ino: u64,
    /// The file.
    pub path: PathBuf,
    /// The ring's name.
    pub name: String,
}

impl Mapped {
    fn header(&self) -> *const Header {
        self.map.as_ptr().cast::<Header>()
    }

    /// The head line's word.
    pub fn head_word(&self) -> &AtomicU64 {
        // SAFETY: the mapping holds a whole header (checked at attach or
        // made at creation), page aligned, so the head line is in bounds
        // and aligned; it holds only an atomic. Ordering: the writer's
        // Release store of `head` (after the slot's Release `seq` store, in
        // `ring::write`) pairs with the Acquire loads of lapped readers
        // (`ring::rejoin`), `claim_reader` and `info`.
        unsafe { &(*self.header()).head.head }
    }

    fn life(&self) -> &LifeLine {
        // SAFETY: as `head_word`; the line holds only atomics. Ordering:
        // the writer's Release store of `state = closed` (`close`) pairs
        // with the readers' Acquire load (`writer`), so a reader that sees
        // the ring closed sees every message published before; the
        // heartbeat is a Relaxed timestamp, ordered with nothing.
        unsafe { &(*self.header()).life }
    }

    /// The wake-up line.
    pub fn wake(&self) -> &WakeLine {
        // SAFETY: as `head_word`; the line holds only atomics. Ordering
        // (Dekker, module doc of `shm`): the writer's slot stores, then a
        // SeqCst fence, then its load of `waiters`; a reader's SeqCst
        // increment of `waiters`, then a SeqCst fence, then its Acquire
        // load of the slot's `seq`. The futex word `seq` is bumped with
        // Release before `FUTEX_WAKE` and compared by the kernel.
        unsafe { &(*self.header()).wake }
    }

    /// Reader entry `i` (`i < MAX_READERS`).
    pub fn reader(&self, i: usize) -> &ReaderEntry {
        // SAFETY: as `head_word`; `i` is checked by the indexing; the
        // entries hold only atomics. Ordering: an entry is taken with an
        // AcqRel compare-exchange of `pid` (0 to ours) and given back with
        // a Release store of 0, which pairs with the next taker's Acquire;
        // the counters are Relaxed figures for `stat`.
        unsafe { &(*self.header()).readers[i] }
    }

    /// Slots.
    pub fn slots(&self) -> u32 {
        self.id.slots
    }

    /// Payload bytes per slot.
    pub fn slot_size(&self) -> u32 {
        self.id.slot_size
    }

    /// Stamps the heartbeat.
    pub fn beat(&self) {
        self.life()
            .heartbeat_ns
            .store(monotonic_ns(), Ordering::Relaxed);
    }

    /// Marks the ring closed by its writer and wakes every sleeper.
    pub fn close(&self) {
        self.life().state.store(STATE_CLOSED, Ordering::Release);
        let w = self.wake();
        w.seq.fetch_add(1, Ordering::Release);
        let _ = hftnet_sys::futex::wake(&w.seq, hftnet_sys::futex::Scope::Shared, u32::MAX);
    }

    /// Whether the ring was closed by its writer (one atomic load).
    pub fn closed(&self) -> bool {
        self.life().state.load(Ordering::Acquire) == STATE_CLOSED
    }

    /// Whether the writer is alive, closed, or gone: a writer holds an
    /// exclusive `flock` on the file while it lives, which the kernel
    /// releases when its process ends however it ends, so a shared lock we
    /// can take means no writer. (On a file system without `flock`, a
    /// heartbeat silent for [`DEAD_AFTER`] decides.)
    pub fn writer(&self) -> WriterState {
        let life = self.life();
        if life.state.load(Ordering::Acquire) == STATE_CLOSED {
            return WriterState::Closed;
        }
        let beat = life.heartbeat_ns.load(Ordering::Relaxed);
        let age = Duration::from_nanos(monotonic_ns().saturating_sub(beat));
        let pid = self.id.writer_pid;
        let gone = match self.file.try_lock_shared() {
            Ok(()) => {
                let _ = self.file.unlock();
                true
            }
            Err(std::fs::TryLockError::WouldBlock) => false,
            Err(std::fs::TryLockError::Error(_)) => age >= DEAD_AFTER,
        };
        if gone {
            WriterState::Dead {
                pid,
                silent_ms: age.as_millis() as u64,
            }
        } else {
            WriterState::Live { pid }
        }
    }

    /// Gives back the entries of readers whose process is gone, and the
    /// sleeping and may-sleep counts they held (a reader killed asleep would
    /// otherwise make the writer wake a sleeper on every message). Run by
    /// the writer's heartbeat thread; returns how many it freed.
    pub fn sweep_readers(&self) -> usize {
        let mut freed = 0;
        for i in 0..MAX_READERS {
            let e = self.reader(i);
            let pid = e.pid.load(Ordering::Acquire);
            if pid != 0
                && matches!(hftnet_sys::proc::exists(pid), Ok(false))
                && e.pid
                    .compare_exchange(pid, 0, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                self.release_counts(e);
                freed += 1;
            }
        }
        freed
    }

    /// Takes back what a dead reader's entry held in the wake line: its
    /// share of `may_sleep` (which makes the writer look for sleepers after
    /// every message) and, if it died asleep, of `waiters` (which would
    /// make it wake a sleeper on every message).
    fn release_counts(&self, e: &ReaderEntry) {
        let dec = |w: &AtomicU32| {
            let _ = w.fetch_update(Ordering::AcqRel, Ordering::Relaxed, |v| v.checked_sub(1));
        };
        if e.blocking.swap(0, Ordering::AcqRel) != 0 {
            dec(&self.wake().may_sleep);
        }
        if e.asleep.swap(0, Ordering::AcqRel) != 0 {
            dec(&self.wake().waiters);
        }
    }

    /// Whether the file at our path is still this ring.
    pub fn still_named(&self) -> bool {
        std::fs::symlink_metadata(&self.path).is_ok_and(|m| m.ino() == self.ino)
    }

    /// Takes a free reader entry (or one of a dead reader) for this
    /// process; returns its index.
    pub fn claim_reader(&self, blocking: bool) -> Result<usize, ShmError> {
        let me = std::process::id();
        let take = |i: usize| {
            let e = self.reader(i);
            e.blocking.store(u32::from(blocking), Ordering::Relaxed);
            e.asleep.store(0, Ordering::Relaxed);
            e.cursor
                .store(self.head_word().load(Ordering::Acquire), Ordering::Relaxed);
            e.received.store(0, Ordering::Relaxed);
            e.lapped.store(0, Ordering::Relaxed);
            e.missed.store(0, Ordering::Relaxed);
            e.attached_ns.store(monotonic_ns(), Ordering::Relaxed);
            i
        };
        for i in 0..MAX_READERS {
            if self
                .reader(i)
                .pid
                .compare_exchange(0, me, Ordering::AcqRel, Ordering::Relaxed)
                .is_ok()
            {
                return Ok(take(i));
            }
        }
        // Full: reclaim the entry of a reader that died attached.
        for i in 0..MAX_READERS {
            let pid = self.reader(i).pid.load(Ordering::Acquire);
            if pid != 0
                && matches!(hftnet_sys::proc::exists(pid), Ok(false))
                && self
                    .reader(i)
                    .pid
                    .compare_exchange(pid, me, Ordering::AcqRel, Ordering::Relaxed)
                    .is_ok()
            {
                self.release_counts(self.reader(i));
                return Ok(take(i));
            }
        }
        Err(ShmError::ReadersFull {
            name: self.name.clone(),
        })
    }

    /// A snapshot of the ring for `stat` and `list`.
    pub fn info(&self) -> RingInfo {
        let head = self.head_word().load(Ordering::Acquire);
        let readers = (0..MAX_READERS)
            .filter_map(|i| {
                let e = self.reader(i);
                let pid = e.pid.load(Ordering::Acquire);
                (pid != 0).then(|| {
                    let cursor = e.cursor.load(Ordering::Relaxed);
                    ReaderInfo {
                        entry: i,
                        pid,
                        alive: hftnet_sys::proc::exists(pid).unwrap_or(true),
                        blocking: e.blocking.load(Ordering::Relaxed) != 0,
                        asleep: e.asleep.load(Ordering::Relaxed) != 0,
                        cursor,
                        lag: head.saturating_sub(cursor),
                        received: e.received.load(Ordering::Relaxed),
                        lapped: e.lapped.load(Ordering::Relaxed),
                        missed: e.missed.load(Ordering::Relaxed),
                    }
                })
            })
            .collect();
        let beat = self.life().heartbeat_ns.load(Ordering::Relaxed);
        RingInfo {
            name: self.name.clone(),
            path: self.path.display().to_string(),
            version: self.id.version,
            slots: self.id.slots,
            slot_size: self.id.slot_size,
            bytes: self.map.len() as u64,
            created_unix_ns: self.id.created_unix_ns,
            writer: self.writer(),
            heartbeat_age_ms: monotonic_ns().saturating_sub(beat) / 1_000_000,
            head,
            sleeping: self.wake().waiters.load(Ordering::Relaxed),
            may_sleep: self.wake().may_sleep.load(Ordering::Relaxed),
            readers,
        }
    }
}

/// The protocol's view of a mapped ring.
impl RingMem for Mapped {
    type W64 = AtomicU64;
    type W32 = AtomicU32;

    #[inline(always)]
    fn slot_count(&self) -> u64 {
        u64::from(self.id.slots)
    }

    #[inline(always)]
    fn words(&self) -> usize {
        self.id.slot_size as usize / 8
    }

    #[inline(always)]
    fn head(&self) -> &AtomicU64 {
        self.head_word()
    }

    #[inline(always)]
    fn seq(&self, k: usize) -> &AtomicU64 {
        debug_assert!(k < self.id.slots as usize);
        let at = HEADER_LEN + k * self.id.stride as usize;
        // SAFETY: `k < slots` (the protocol masks it) and the file holds
        // `slots * stride` bytes after the header (checked at attach), so
        // the word is inside the mapping; `stride` is a multiple of 64 and
        // the mapping page aligned, so it is 8-byte aligned. Shared words
        // are only ever accessed atomically. Ordering (`ring` module doc):
        // the writer's Release store of `seq = 2n+2` pairs with a reader's
        // Acquire load of it; the writer's Relaxed store of `2n+1` followed
        // by a Release fence pairs, through any payload word, with the
        // reader's Acquire fence before its second, Relaxed, load of `seq`.
        unsafe { &*self.map.as_ptr().add(at).cast::<AtomicU64>() }
    }

    #[inline(always)]
    fn len(&self, k: usize) -> &AtomicU32 {
        debug_assert!(k < self.id.slots as usize);
        let at = HEADER_LEN + k * self.id.stride as usize + 8;
        // SAFETY: as `seq`, 8 bytes further, 4-byte aligned. Ordering: a
        // payload word of the seqlock (Relaxed, between the writer's
        // Release fence and Release `seq` store; read between the reader's
        // Acquire `seq` load and Acquire fence).
        unsafe { &*self.map.as_ptr().add(at).cast::<AtomicU32>() }
    }

    #[inline(always)]
    fn word(&self, k: usize, w: usize) -> &AtomicU64 {
        debug_assert!(k < self.id.slots as usize && w < self.words());
        let at = HEADER_LEN + k * self.id.stride as usize + SLOT_HEADER + w * 8;
        // SAFETY: as `seq`; `w < slot_size / 8` (the protocol clamps
        // lengths to the slot) and `SLOT_HEADER + slot_size <= stride`.
        // Ordering: as `len`, a Relaxed payload word the `seq` pair guards.
        unsafe { &*self.map.as_ptr().add(at).cast::<AtomicU64>() }
    }

    #[inline(always)]
    fn waiters(&self) -> &AtomicU32 {
        &self.wake().waiters
    }

    #[inline(always)]
    fn wake_word(&self) -> &AtomicU32 {
        &self.wake().seq
    }

    #[inline(always)]
    fn fence(order: Ordering) {
        std::sync::atomic::fence(order);
    }

    /// The second line of the slot (a 64-byte message spans two): its
    /// first payload word, when the slot has one there.
    #[inline(always)]
    fn touch(&self, k: usize) {
        const W: usize = (LINE - SLOT_HEADER) / 8;
        if self.words() > W {
            std::hint::black_box(self.word(k, W).load(Ordering::Relaxed));
        }
    }
}

/// The writer as a reader (or `stat`) sees it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(tag = "state", rename_all = "kebab-case")]
pub enum WriterState {
    /// Beating.
    Live {
        /// Its pid.
        pid: u32,
    },
    /// Closed the ring on its way out.
    Closed,
    /// Stopped beating: killed, hung or stopped.
    Dead {
        /// Its pid.
        pid: u32,
        /// How long it has been silent.
        silent_ms: u64,
    },
}

/// One reader of a ring, as `hftnet shm stat` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ReaderInfo {
    /// Its entry in the header.
    pub entry: usize,
    /// Its pid.
    pub pid: u32,
    /// Whether that process still exists.
    pub alive: bool,
    /// Whether it may sleep (else it spins).
    pub blocking: bool,
    /// Whether it is asleep (or about to be) now.
    pub asleep: bool,
    /// The next message it reads.
    pub cursor: u64,
    /// Messages published it has not read yet.
    pub lag: u64,
    /// Messages delivered.
    pub received: u64,
    /// Times it was lapped.
    pub lapped: u64,
    /// Messages it missed by being lapped.
    pub missed: u64,
}

/// A ring, as `hftnet shm list` and `stat` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct RingInfo {
    /// The ring's name.
    pub name: String,
    /// Its file.
    pub path: String,
    /// Its format version.
    pub version: u32,
    /// Slots.
    pub slots: u32,
    /// Payload bytes per slot.
    pub slot_size: u32,
    /// The file's size.
    pub bytes: u64,
    /// When it was made (Unix time, ns).
    pub created_unix_ns: u64,
    /// Its writer.
    pub writer: WriterState,
    /// Age of the writer's last heartbeat.
    pub heartbeat_age_ms: u64,
    /// Messages published: the writer's position.
    pub head: u64,
    /// Readers counted as sleeping (or about to) in the wake line.
    pub sleeping: u32,
    /// Readers counted as blocking (the writer looks for sleepers).
    pub may_sleep: u32,
    /// Readers attached.
    pub readers: Vec<ReaderInfo>,
}

impl RingInfo {
    /// Whether nobody writes it any more (closed, or the writer is dead):
    /// `hftnet shm rm` removes it without `--force`.
    #[must_use]
    pub fn stale(&self) -> bool {
        !matches!(self.writer, WriterState::Live { .. })
    }
}

/// Opens and maps the ring file at `path` (named `name`), checking it is a
/// ring of this format.
pub(super) fn attach(path: &Path, name: &str) -> Result<Mapped, ShmError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let f = OpenOptions::new()
        .read(true)
        .write(true)
        .custom_flags(libc::O_NOFOLLOW | libc::O_CLOEXEC)
        .open(path)
        .map_err(|e| {
            if e.kind() == std::io::ErrorKind::NotFound {
                ShmError::NotFound {
                    name: name.to_string(),
                    dir: dir.display().to_string(),
                }
            } else {
                io_err("opening", path, e)
            }
        })?;
    let meta = f.metadata().map_err(|e| io_err("inspecting", path, e))?;
    let bad = |reason: String| ShmError::Format {
        path: path.display().to_string(),
        name: name.to_string(),
        reason,
    };
    if !meta.file_type().is_file() {
        return Err(bad("not a regular file".into()));
    }
    // `/dev/shm` is writable by every user: trust only our own rings (and
    // root's), never a file another user left under the name.
    let me = hftnet_sys::proc::euid();
    if meta.uid() != me && meta.uid() != 0 {
        return Err(bad(format!(
            "it belongs to uid {}, not to you (uid {me}); hftnet uses only rings of its own user \
             or root's",
            meta.uid()
        )));
    }
    let size = meta.len();
    if size < HEADER_LEN as u64 {
        return Err(bad(format!(
            "{size} bytes, shorter than a ring header ({HEADER_LEN})"
        )));
    }
    if size > (HEADER_LEN + MAX_RING_BYTES) as u64 {
        return Err(bad(format!("{size} bytes, larger than any ring")));
    }
    let map = Mapping::shared_fd(f.as_fd(), size as usize).map_err(|e| sys_err("mapping", path, &e))?;
    // SAFETY: the mapping is at least a header long and page aligned; the
    // identity is plain data, copied out once with a volatile read (a
    // hostile writer changing it later changes nothing we use). Ordering:
    // the writer wrote it before `link` gave the file its name, and our
    // `open` of that name comes after the `link` (the kernel orders the two
    // system calls), so the copy sees it whole.
    let raw = unsafe { std::ptr::read_volatile(map.as_ptr().cast::<[u8; LINE]>()) };
    let id = check_identity(&raw, size).map_err(bad)?;
    Ok(Mapped {
        map,
        file: f,
        id: id.id,
        ino: meta.ino(),
        path: path.to_path_buf(),
        name: name.to_string(),
    })
}

/// Reads and checks a ring's identity line (its first 64 bytes) against
/// the file's size: the magic, the format version, and a geometry that
/// fits the file exactly. Any bytes are safe to give it (a hostile or
/// broken file): it returns what is wrong, in words, and never panics.
///
/// # Errors
/// What is wrong with the header, e.g. "format version 2 (this hftnet
/// reads version 1)" or "its header has a bad slot size".
pub fn check_identity(raw: &[u8; LINE], size: u64) -> Result<RingShape, String> {
    let u32_at = |at: usize| u32::from_le_bytes([raw[at], raw[at + 1], raw[at + 2], raw[at + 3]]);
    let mut magic = [0u8; 8];
    magic.copy_from_slice(&raw[..8]);
    if magic != MAGIC {
        return Err("no hftnet ring magic at its start".into());
    }
    let mut created = [0u8; 8];
    created.copy_from_slice(&raw[40..48]);
    let id = Identity {
        magic,
        version: u32_at(8),
        header_len: u32_at(12),
        slots: u32_at(16),
        slot_size: u32_at(20),
        stride: u32_at(24),
        max_readers: u32_at(28),
        writer_pid: u32_at(32),
        _reserved: u32_at(36),
        created_unix_ns: u64::from_le_bytes(created),
    };
    if id.version != FORMAT_VERSION {
        return Err(format!(
            "format version {} (this hftnet reads version {FORMAT_VERSION}); run the same hftnet \
             at both ends",
            id.version
        ));
    }
    let slot_ok = (8..=MAX_SLOT_SIZE).contains(&id.slot_size) && id.slot_size.is_multiple_of(8);
    let slots_ok = (2..=1 << 24).contains(&id.slots) && id.slots.is_power_of_two();
    let stride = if slot_ok { geometry(id.slot_size).1 } else { 0 };
    let checks = [
        (id.header_len as usize == HEADER_LEN, "header length"),
        (id.max_readers as usize == MAX_READERS, "reader entries"),
        (slots_ok, "slot count (a power of two)"),
        (slot_ok, "slot size"),
        (id.stride as usize == stride, "slot stride"),
        (
            u64::from(id.slots) * u64::from(id.stride) + HEADER_LEN as u64 == size,
            "file size for its slots",
        ),
        (id.writer_pid != 0, "writer pid"),
    ];
    if let Some((_, what)) = checks.iter().find(|(ok, _)| !ok) {
        return Err(format!(
            "its header has a bad {what} (slots {}, slot size {}, stride {}, {size} bytes)",
            id.slots, id.slot_size, id.stride
        ));
    }
    Ok(RingShape { id })
}

/// The identity line's bytes, little-endian, as [`check_identity`] reads them.
fn encode_identity(id: &Identity) -> [u8; LINE] {
    let mut b = [0u8; LINE];
    b[..8].copy_from_slice(&id.magic);
    for (at, v) in [
        (8, id.version),
        (12, id.header_len),
        (16, id.slots),
        (20, id.slot_size),
        (24, id.stride),
        (28, id.max_readers),
        (32, id.writer_pid),
        (36, id._reserved),
    ] {
        b[at..at + 4].copy_from_slice(&v.to_le_bytes());
    }
    b[40..48].copy_from_slice(&id.created_unix_ns.to_le_bytes());
    b
}

/// A checked ring identity (see [`check_identity`]).
#[derive(Debug, Clone, Copy)]
pub struct RingShape {
    id: Identity,
}

impl RingShape {
    /// Slots (a power of two).
    #[must_use]
    pub fn slots(&self) -> u32 {
        self.id.slots
    }

    /// Payload bytes per slot (a multiple of 8).
    #[must_use]
    pub fn slot_size(&self) -> u32 {
        self.id.slot_size
    }

    /// Bytes from one slot to the next (a multiple of 64).
    #[must_use]
    pub fn stride(&self) -> u32 {
        self.id.stride
    }

    /// The writer's pid.
    #[must_use]
    pub fn writer_pid(&self) -> u32 {
        self.id.writer_pid
    }
}

/// What a writer asks for.
#[derive(Debug, Clone, Copy)]
pub(super) struct Shape {
    pub slots: u32,
    pub slot_size: u32,
    pub perm: u32,
}

/// Creates ring `name` in `dir` for a new writer: replaces a stale ring
/// of that name (closed, or its writer dead) and refuses a live one.
/// Returns the mapping and what it replaced, if anything.
pub(super) fn create(
    dir: &Path,
    name: &str,
    shape: Shape,
) -> Result<(Mapped, Option<RingInfo>), ShmError> {
    check_ring_name(name)?;
    let (slot_size, stride) = geometry(shape.slot_size);
    if !(2..=1 << 24).contains(&shape.slots) || !shape.slots.is_power_of_two() {
        return Err(ShmError::BadSize(format!(
            "slots={} : a ring takes a power of two from 2 to 16777216 slots",
            shape.slots
        )));
    }
    if !(8..=MAX_SLOT_SIZE).contains(&slot_size) {
        return Err(ShmError::BadSize(format!(
            "size={} : a slot takes 8 bytes to 1M",
            shape.slot_size
        )));
    }
    let bytes = shape.slots as usize * stride;
    if bytes > MAX_RING_BYTES {
        return Err(ShmError::BadSize(format!(
            "slots={} x size={} makes {} MiB of slots; a ring takes at most {} MiB: lower slots= \
             or size=",
            shape.slots,
            shape.slot_size,
            bytes >> 20,
            MAX_RING_BYTES >> 20
        )));
    }
    let path = path_of(dir, name);
    let _lock = DirLock::take(dir)?;
    let mut replaced = None;
    match attach(&path, name) {
        Ok(old) => {
            let info = old.info();
            if let WriterState::Live { pid } = info.writer {
                return Err(ShmError::WriterExists {
                    name: name.to_string(),
                    pid,
                });
            }
            // Stale: take its name over (readers still mapping it see it
            // closed or dead and look for the new one). Under the
            // directory lock, so no other writer is between look and act.
            std::fs::remove_file(&path).map_err(|e| io_err("removing the stale ring", &path, e))?;
            replaced = Some(info);
        }
        Err(ShmError::NotFound { .. }) => {}
        Err(e) => return Err(e),
    }
    let mut m = make_file(dir, name, shape.slots, slot_size, stride, shape.perm)?;
    hftnet_sys::proc::link_fd(m.file.as_fd(), &path).map_err(|e| sys_err("naming", &path, &e))?;
    m.path = path;
    m.ino = m
        .file
        .metadata()
        .map_err(|e| io_err("inspecting", &m.path, e))?
        .ino();
    Ok((m, replaced))
}

/// An exclusive `flock` on the rings' directory, held while a ring is made,
/// taken over or removed, so that looking at a name and acting on it is one
/// step for every hftnet process. Bounded: a lock held elsewhere for more
/// than [`DIR_LOCK_WAIT`] is an error naming it.
pub(super) struct DirLock(File);

/// The longest wait for the directory lock.
pub const DIR_LOCK_WAIT: Duration = Duration::from_secs(2);

impl DirLock {
    /// Takes the lock of `dir`.
    pub(super) fn take(dir: &Path) -> Result<Self, ShmError> {
        let f = File::open(dir).map_err(|e| io_err("opening the directory", dir, e))?;
        let until = std::time::Instant::now() + DIR_LOCK_WAIT;
        loop {
            match f.try_lock() {
                Ok(()) => return Ok(Self(f)),
                Err(std::fs::TryLockError::WouldBlock) if std::time::Instant::now() < until => {
                    std::thread::sleep(Duration::from_millis(1));
                }
                Err(std::fs::TryLockError::WouldBlock) => {
                    return Err(io_err(
                        "locking (another process has held the directory's lock for 2 s)",
                        dir,
                        std::io::Error::from_raw_os_error(libc::EWOULDBLOCK),
                    ));
                }
                Err(std::fs::TryLockError::Error(e)) => {
                    return Err(io_err("locking the directory", dir, e));
                }
            }
        }
    }
}

impl Drop for DirLock {
    fn drop(&mut self) {
        let _ = self.0.unlock();
    }
}

/// Makes, sizes and initialises an unnamed file in `dir` (`O_TMPFILE`),
/// locked for its writer; [`create`] names it once it is whole.
fn make_file(
    dir: &Path,
    name: &str,
    slots: u32,
    slot_size: u32,
    stride: usize,
    perm: u32,
) -> Result<Mapped, ShmError> {
    let f: File = OpenOptions::new()
        .read(true)
        .write(true)
        .mode(perm)
        .custom_flags(libc::O_TMPFILE | libc::O_CLOEXEC)
        .open(dir)
        .map_err(|e| io_err("creating a ring file in", dir, e))?;
    // The writer's mark of life, held until its process ends.
    f.try_lock().map_err(|e| {
        io_err(
            "locking the new ring in",
            dir,
            match e {
                std::fs::TryLockError::Error(e) => e,
                std::fs::TryLockError::WouldBlock => {
                    std::io::Error::from_raw_os_error(libc::EWOULDBLOCK)
                }
            },
        )
    })?;
    // The umask may have taken bits away: set exactly what was asked.
    f.set_permissions(std::fs::Permissions::from_mode(perm))
        .map_err(|e| io_err("setting permissions of", dir, e))?;
    let len = HEADER_LEN + slots as usize * stride;
    f.set_len(len as u64)
        .map_err(|e| io_err("sizing", dir, e))?;
    match Mapping::allocate(f.as_fd(), len) {
        Ok(()) => {}
        // A file system without fallocate: go on (a full one could then
        // fault a writer; dirfs, the default, has it).
        Err(e) if e.errno() == Some(libc::EOPNOTSUPP) => {}
        Err(e) => return Err(sys_err("allocating", dir, &e)),
    }
    let map = Mapping::shared_fd(f.as_fd(), len).map_err(|e| sys_err("mapping", dir, &e))?;
    let id = Identity {
        magic: MAGIC,
        version: FORMAT_VERSION,
        header_len: HEADER_LEN as u32,
        slots,
        slot_size,
        stride: stride as u32,
        max_readers: MAX_READERS as u32,
        writer_pid: std::process::id(),
        _reserved: 0,
        created_unix_ns: std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| d.as_nanos() as u64),
    };
    // SAFETY: the mapping is at least a header long, page aligned and not
    // yet named, so nobody else maps it; the identity is plain data.
    // Ordering: readers only find the file after `link`, a system call made
    // after this store (see `attach`).
    unsafe { std::ptr::write_volatile(map.as_ptr().cast::<[u8; LINE]>(), encode_identity(&id)) };
    let m = Mapped {
        map,
        file: f,
        id,
        ino: 0,
        path: dir.to_path_buf(),
        name: name.to_string(),
    };
    m.life().state.store(STATE_LIVE, Ordering::Relaxed);
    m.beat();
    Ok(m)
}

/// The rings in `dir`, by name; files with the ring prefix that are not
/// usable rings come back as errors, so `list` shows them too.
#[must_use]
pub fn list(dir: &Path) -> Vec<Result<RingInfo, ShmError>> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut names: Vec<String> = entries
        .filter_map(Result::ok)
        .filter_map(|e| {
            e.file_name()
                .to_str()
                .and_then(|n| n.strip_prefix(FILE_PREFIX))
                .map(str::to_string)
        })
        .collect();
    names.sort();
    names.iter().map(|n| stat(dir, n)).collect()
}

/// Ring `name` in `dir`, as `hftnet shm stat` shows it.
///
/// # Errors
/// [`ShmError::NotFound`], [`ShmError::Format`] and the like.
pub fn stat(dir: &Path, name: &str) -> Result<RingInfo, ShmError> {
    check_ring_name(name)?;
    attach(&path_of(dir, name), name).map(|m| m.info())
}

/// Removes ring `name` from `dir`: refused while its writer is live unless
/// `force`; a file that is not a usable ring only with `force`. Readers
/// still attached keep their mapping until they detach.
///
/// # Errors
/// [`ShmError::WriterExists`] for a live ring without `force`, and the
/// errors of [`stat`].
pub fn remove(dir: &Path, name: &str, force: bool) -> Result<Option<RingInfo>, ShmError> {
    check_ring_name(name)?;
    let path = path_of(dir, name);
    let _lock = DirLock::take(dir)?;
    let info = match stat(dir, name) {
        Ok(i) => Some(i),
        Err(e @ ShmError::Format { .. }) if !force => return Err(e),
        Err(ShmError::Format { .. }) => None,
        Err(e) => return Err(e),
    };
    if let Some(i) = &info
        && let (WriterState::Live { pid }, false) = (i.writer, force)
    {
        return Err(ShmError::WriterExists {
            name: name.to_string(),
            pid,
        });
    }
    std::fs::remove_file(&path).map_err(|e| io_err("removing", &path, e))?;
    Ok(info)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn identity(slots: u32, slot_size: u32) -> Identity {
        let (size, stride) = geometry(slot_size);
        Identity {
            magic: MAGIC,
            version: FORMAT_VERSION,
            header_len: HEADER_LEN as u32,
            slots,
            slot_size: size,
            stride: stride as u32,
            max_readers: MAX_READERS as u32,
            writer_pid: 42,
            _reserved: 0,
            created_unix_ns: 7,
        }
    }

    #[test]
    fn identities_round_trip_and_every_bad_field_is_named() {
        let id = identity(64, 60);
        let size = (HEADER_LEN + 64 * 128) as u64;
        let raw = encode_identity(&id);
        assert_eq!(&raw[..8], b"HFTNSHM\0");
        assert_eq!(raw[16..20], 64u32.to_le_bytes(), "slots at offset 16");
        let s = check_identity(&raw, size).unwrap();
        assert_eq!((s.slots(), s.slot_size(), s.stride(), s.writer_pid()), (64, 64, 128, 42));
        let bad = |at: usize, v: u32, size: u64| {
            let mut r = raw;
            r[at..at + 4].copy_from_slice(&v.to_le_bytes());
            check_identity(&r, size).unwrap_err()
        };
        assert!(bad(8, 9, size).contains("format version 9"));
        assert!(bad(12, 4096, size).contains("header length"));
        assert!(bad(16, 48, size).contains("slot count"));
        assert!(bad(20, u32::MAX, size).contains("slot size"), "no overflow on a huge size");
        assert!(bad(20, 12, size).contains("slot size"));
        assert!(bad(24, 64, size).contains("slot stride"));
        assert!(bad(28, 1, size).contains("reader entries"));
        assert!(bad(32, 0, size).contains("writer pid"));
        assert!(check_identity(&raw, size + 1).unwrap_err().contains("file size"));
        assert!(check_identity(&[0; 64], size).unwrap_err().contains("magic"));
    }
}
