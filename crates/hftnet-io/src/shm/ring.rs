//! The broadcast ring's protocol, apart from where its memory lives: one
//! writer publishes message `n` into slot `n % slots`; any number of
//! readers, each with its own cursor, copy message `c` out of slot
//! `c % slots` and check it was not overwritten while they copied.
//!
//! Layer: the core of `shm://`, written once over a [`RingMem`] so the same
//! functions ([`write()`], [`read()`], the sleep handshake) run on a file
//! mapped shared between processes and, in the unit tests, on `loom`'s
//! model atomics. loom explores the interleavings of its C11 model (with
//! a preemption bound, and without load buffering or SeqCst accesses
//! stronger than AcqRel): a bounded check, not a proof; the argument
//! below is the proof.
//!
//! The protocol (a seqlock per slot, with the message number in the
//! sequence word so a reader tells "not yet written" from "overwritten"):
//! - writer, message `n` into slot `k`: `seq[k] = 2n+1` (Relaxed, "being
//!   written"), a Release fence, the length and payload words (Relaxed),
//!   then `seq[k] = 2n+2` (Release, "message n complete"), then `head =
//!   n+1` (Release: the writer's position, read by sleepers, lapped
//!   readers and `hftnet shm stat`);
//! - reader, message `c`: `s1 = seq[k]` (Acquire), then the length and
//!   the payload words (Relaxed; the first 128 bytes whatever `s1` says, so
//!   their loads leave with `s1`'s). `s1 < 2c+2`: not yet written (an
//!   older message, or `c` being written): empty, the copy thrown away.
//!   `s1 > 2c+2`: overwritten by a later message: lapped. Otherwise the
//!   rest of the payload, an Acquire fence, and `s2 = seq[k]` (Relaxed):
//!   the copy is message `c` exactly when `s2 == s1`.
//!
//! Why a torn copy is always caught: if any payload load read a value of a
//! later write, that write came after the writer's Release fence, which
//! then synchronises with the reader's Acquire fence (fence to fence,
//! through that payload word), so the writer's odd store of `seq[k]` — made
//! before its fence — happens before the reader's `s2` load, and `s2` is
//! that odd value or later, never `s1`. And a reader whose `s1` load read
//! `2c+2` acquired the writer's Release store of it, so every payload store
//! of message `c` happens before its copy.
//!
//! Every word is an atomic (Relaxed loads and stores of whole 8-byte words
//! compile to plain moves on x86-64 and arm64): there is no data race in
//! the language's sense, only values the check throws away (Boehm, "Can
//! seqlocks get along with programming language memory models?", 2012).
//!
//! Sleeping (the futex of `rx=block`): a reader about to sleep raises
//! `waiters` (SeqCst), fences, and looks at the slot again
//! ([`prepare_sleep`]); a writer that may have sleeping readers fences
//! after publishing and reads `waiters` ([`sleepers`]), and if it sees one
//! changes the futex word ([`bump`]) before waking them all. Dekker's argument: at
//! least one of the two sees the other's store, so a reader never sleeps
//! through a message. The unit tests check both protocols with `loom`.
//!
//! Message numbers are far from wrapping (2^63 of them); the arithmetic
//! still wraps or saturates rather than panic on a hostile ring's head.
//!
//! Must never: be written by two writers at once (the sequence words would
//! interleave), or read with a length larger than the slot (lengths are
//! clamped to the slot: a hostile or torn length cannot take a read out
//! of bounds).

use std::sync::atomic::Ordering;

/// A 64-bit atomic word as the protocol uses it.
pub trait Word64 {
    /// Atomic load.
    fn load(&self, order: Ordering) -> u64;
    /// Atomic store.
    fn store(&self, v: u64, order: Ordering);
}

/// A 32-bit atomic word as the protocol uses it.
pub trait Word32 {
    /// Atomic load.
    fn load(&self, order: Ordering) -> u32;
    /// Atomic store.
    fn store(&self, v: u32, order: Ordering);
    /// Atomic add, returning the previous value.
    fn fetch_add(&self, v: u32, order: Ordering) -> u32;
}

impl Word64 for std::sync::atomic::AtomicU64 {
    #[inline(always)]
    fn load(&self, order: Ordering) -> u64 {
        self.load(order)
    }
    #[inline(always)]
    fn store(&self, v: u64, order: Ordering) {
        self.store(v, order);
    }
}

impl Word32 for std::sync::atomic::AtomicU32 {
    #[inline(always)]
    fn load(&self, order: Ordering) -> u32 {
        self.load(order)
    }
    #[inline(always)]
    fn store(&self, v: u32, order: Ordering) {
        self.store(v, order);
    }
    #[inline(always)]
    fn fetch_add(&self, v: u32, order: Ordering) -> u32 {
        self.fetch_add(v, order)
    }
}

/// Where a ring's words live.
pub trait RingMem {
    /// The 64-bit word type.
    type W64: Word64;
    /// The 32-bit word type.
    type W32: Word32;
    /// Slots, a power of two.
    fn slot_count(&self) -> u64;
    /// Payload capacity of a slot in 8-byte words.
    fn words(&self) -> usize;
    /// The writer's position: messages published.
    fn head(&self) -> &Self::W64;
    /// Slot `k`'s sequence word (`k < slot_count`).
    fn seq(&self, k: usize) -> &Self::W64;
    /// Slot `k`'s length word.
    fn len(&self, k: usize) -> &Self::W32;
    /// Payload word `w` (`w < words`) of slot `k`.
    fn word(&self, k: usize, w: usize) -> &Self::W64;
    /// Readers sleeping or about to.
    fn waiters(&self) -> &Self::W32;
    /// The futex word sleeping readers wait on.
    fn wake_word(&self) -> &Self::W32;
    /// A memory fence of the same model as the words.
    fn fence(order: Ordering);
    /// Loads the lines of slot `k` after its first (discarding the
    /// values): a reader polling the sequence word calls it, so when a
    /// message lands every line of a short message is fetched at once,
    /// not one after the other. Only a hint; none by default.
    #[inline(always)]
    fn touch(&self, k: usize) {
        let _ = k;
    }
}

/// The slot of message `n`.
#[inline(always)]
fn slot_of<M: RingMem>(m: &M, n: u64) -> usize {
    (n & (m.slot_count() - 1)) as usize
}

/// Publishes `data` as message `n` (the writer's next message number).
/// The caller checked `data.len() <= words * 8`; longer data is cut to the
/// slot.
#[inline]
pub fn write<M: RingMem>(m: &M, n: u64, data: &[u8]) {
    let k = slot_of(m, n);
    let data = &data[..data.len().min(m.words() * 8)];
    let seq = m.seq(k);
    seq.store(n.wrapping_mul(2).wrapping_add(1), Ordering::Relaxed);
    M::fence(Ordering::Release);
    m.len(k).store(data.len() as u32, Ordering::Relaxed);
    let mut chunks = data.chunks_exact(8);
    let mut w = 0;
    for c in &mut chunks {
        let mut b = [0u8; 8];
        b.copy_from_slice(c);
        m.word(k, w).store(u64::from_le_bytes(b), Ordering::Relaxed);
        w += 1;
    }
    let rest = chunks.remainder();
    if !rest.is_empty() {
        let mut b = [0u8; 8];
        b[..rest.len()].copy_from_slice(rest);
        m.word(k, w).store(u64::from_le_bytes(b), Ordering::Relaxed);
    }
    seq.store(n.wrapping_mul(2).wrapping_add(2), Ordering::Release);
    m.head().store(n.wrapping_add(1), Ordering::Release);
}

/// Writer, after [`write()`], when a reader may sleep: whether one is
/// asleep or about to be (then it must bump the futex word with [`bump`]
/// and wake every sleeper). The SeqCst fence between the slot's stores and
/// the read of `waiters` is one half of Dekker's argument;
/// [`prepare_sleep`] is the other: at least one of the two sees the
/// other's store. Each reader holds exactly its own count until it leaves
/// (a writer that took the count instead would let a woken reader's leave
/// take a count another reader had just raised: a lost wake-up; `loom`
/// found it).
#[inline]
pub fn sleepers<M: RingMem>(m: &M) -> bool {
    M::fence(Ordering::SeqCst);
    m.waiters().load(Ordering::Relaxed) != 0
}

/// Takes back this reader's count (an add of `u32::MAX` wraps to minus one).
#[inline]
fn leave<M: RingMem>(m: &M) {
    m.waiters().fetch_add(u32::MAX, Ordering::Relaxed);
}

/// Writer: changes the futex word (Release) before it wakes the sleepers,
/// so a reader about to wait on the old value returns at once.
#[inline]
pub fn bump<M: RingMem>(m: &M) {
    m.wake_word().fetch_add(1, Ordering::Release);
}

/// Reader at message `c`, about to sleep: announces itself in `waiters`
/// and checks the slot again. `None`: the message is there (no sleep, the
/// announcement withdrawn). `Some(v)`: wait on the futex word while it
/// holds `v`, then call [`end_sleep`].
#[inline]
pub fn prepare_sleep<M: RingMem>(m: &M, c: u64) -> Option<u32> {
    let seen = m.wake_word().load(Ordering::Acquire);
    m.waiters().fetch_add(1, Ordering::SeqCst);
    M::fence(Ordering::SeqCst);
    if ready(m, c) {
        leave(m);
        return None;
    }
    Some(seen)
}

/// Reader: withdraws the announcement of [`prepare_sleep`] after its wait
/// (unless the writer took it when it woke the sleepers).
#[inline]
pub fn end_sleep<M: RingMem>(m: &M) {
    leave(m);
}

/// What [`read`] found for the message asked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Read {
    /// The message, of this length; `out` holds its first
    /// `min(len, out.len())` bytes.
    Got(usize),
    /// Not written yet.
    Empty,
    /// Overwritten by a later message: the reader was lapped.
    Lapped,
}

/// Whether message `c` is published (without copying it): what a reader
/// checks before it sleeps.
#[inline]
pub fn ready<M: RingMem>(m: &M, c: u64) -> bool {
    m.seq(slot_of(m, c)).load(Ordering::Acquire) >= c.wrapping_mul(2).wrapping_add(2)
}

/// What a reader polling for message `c` calls between polls: see
/// [`RingMem::touch`].
#[inline(always)]
pub fn touch<M: RingMem>(m: &M, c: u64) {
    m.touch(slot_of(m, c));
}

/// Copies message `c` into `out` if it is there and whole.
#[inline]
pub fn read<M: RingMem>(m: &M, c: u64, out: &mut [u8]) -> Read {
    let k = slot_of(m, c);
    let want = c.wrapping_mul(2).wrapping_add(2);
    let seq = m.seq(k);
    let s1 = seq.load(Ordering::Acquire);
    let len = (m.len(k).load(Ordering::Relaxed) as usize).min(m.words() * 8);
    let copy = len.min(out.len());
    // The head of the message is copied before `s1` is looked at, so its
    // loads leave with the sequence word's (the lines of a short message
    // arrive together, not one after the other once `s1` is known); when
    // `s1` says it is not message `c`, the copy is thrown away.
    let head = copy.min(SPECULATE);
    copy_words(m, k, &mut out[..head], 0);
    if s1 != want {
        return if s1 < want { Read::Empty } else { Read::Lapped };
    }
    copy_words(m, k, &mut out[head..copy], head / 8);
    M::fence(Ordering::Acquire);
    if seq.load(Ordering::Relaxed) != want {
        return Read::Lapped;
    }
    Read::Got(len)
}

/// Bytes of a message copied before its sequence word is checked: two
/// lines' worth.
const SPECULATE: usize = 128;

/// Copies payload words from word `first` on into `out` (whole words, the
/// last one cut).
#[inline(always)]
fn copy_words<M: RingMem>(m: &M, k: usize, out: &mut [u8], first: usize) {
    let mut chunks = out.chunks_exact_mut(8);
    let mut w = first;
    for c in &mut chunks {
        c.copy_from_slice(&m.word(k, w).load(Ordering::Relaxed).to_le_bytes());
        w += 1;
    }
    let rest = chunks.into_remainder();
    if !rest.is_empty() {
        let b = m.word(k, w).load(Ordering::Relaxed).to_le_bytes();
        rest.copy_from_slice(&b[..rest.len()]);
    }
}

/// Where a lapped reader at `cursor` rejoins, and how many messages it
/// missed: it rejoins at the writer's position (`head`, loaded with
/// Acquire), having missed every message from `cursor` to there. A head
/// that is not past the cursor (a writer that went back: a corrupt or
/// hostile ring) still moves the reader on by one, so a reader never spins
/// on one slot.
#[inline]
pub fn rejoin<M: RingMem>(m: &M, cursor: u64) -> (u64, u64) {
    let head = m.head().load(Ordering::Acquire).max(cursor.saturating_add(1));
    (head, head.saturating_sub(cursor))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::atomic::{AtomicU32, AtomicU64, fence};

    /// A ring on the heap with std atomics.
    struct Heap {
        head: AtomicU64,
        seq: Vec<AtomicU64>,
        len: Vec<AtomicU32>,
        words: Vec<AtomicU64>,
        wake: [AtomicU32; 2],
        per: usize,
    }

    impl Heap {
        fn new(slots: usize, per: usize) -> Self {
            Self {
                head: AtomicU64::new(0),
                seq: (0..slots).map(|_| AtomicU64::new(0)).collect(),
                len: (0..slots).map(|_| AtomicU32::new(0)).collect(),
                words: (0..slots * per).map(|_| AtomicU64::new(0)).collect(),
                wake: [AtomicU32::new(0), AtomicU32::new(0)],
                per,
            }
        }
    }

    impl RingMem for Heap {
        type W64 = AtomicU64;
        type W32 = AtomicU32;
        fn slot_count(&self) -> u64 {
            self.seq.len() as u64
        }
        fn words(&self) -> usize {
            self.per
        }
        fn head(&self) -> &AtomicU64 {
            &self.head
        }
        fn seq(&self, k: usize) -> &AtomicU64 {
            &self.seq[k]
        }
        fn len(&self, k: usize) -> &AtomicU32 {
            &self.len[k]
        }
        fn word(&self, k: usize, w: usize) -> &AtomicU64 {
            &self.words[k * self.per + w]
        }
        fn waiters(&self) -> &AtomicU32 {
            &self.wake[0]
        }
        fn wake_word(&self) -> &AtomicU32 {
            &self.wake[1]
        }
        fn fence(order: Ordering) {
            fence(order);
        }
    }

    #[test]
    fn messages_of_every_length_come_back_exactly() {
        let m = Heap::new(4, 3);
        let mut out = [0u8; 24];
        for n in 0..25u64 {
            let data: Vec<u8> = (0..n as u8).map(|i| i ^ 0xa5).collect();
            assert_eq!(read(&m, n, &mut out), Read::Empty);
            assert!(!ready(&m, n));
            write(&m, n, &data);
            assert!(ready(&m, n));
            let want = data.len().min(24);
            assert_eq!(read(&m, n, &mut out), Read::Got(want));
            assert_eq!(&out[..want], &data[..want]);
        }
        let mut short = [0u8; 5];
        write(&m, 25, &[9; 20]);
        assert_eq!(read(&m, 25, &mut short), Read::Got(20), "length kept");
        assert_eq!(short, [9; 5], "copy cut to the buffer");
    }

    #[test]
    fn a_lapped_reader_sees_it_and_rejoins_at_the_head_counting_the_missed() {
        let m = Heap::new(4, 1);
        for n in 0..10u64 {
            write(&m, n, &n.to_le_bytes());
        }
        let mut out = [0u8; 8];
        // Messages 0..5 were overwritten; 6..9 are still there.
        assert_eq!(read(&m, 2, &mut out), Read::Lapped);
        assert_eq!(rejoin(&m, 2), (10, 8));
        assert_eq!(read(&m, 7, &mut out), Read::Got(8));
        assert_eq!(u64::from_le_bytes(out), 7);
        // A head behind the cursor (a hostile ring) still moves on.
        m.head.store(3, Ordering::Relaxed);
        assert_eq!(rejoin(&m, 5), (6, 1));
    }

    impl Word64 for loom::sync::atomic::AtomicU64 {
        fn load(&self, o: Ordering) -> u64 {
            loom::sync::atomic::AtomicU64::load(self, o)
        }
        fn store(&self, v: u64, o: Ordering) {
            loom::sync::atomic::AtomicU64::store(self, v, o);
        }
    }
    impl Word32 for loom::sync::atomic::AtomicU32 {
        fn load(&self, o: Ordering) -> u32 {
            loom::sync::atomic::AtomicU32::load(self, o)
        }
        fn store(&self, v: u32, o: Ordering) {
            loom::sync::atomic::AtomicU32::store(self, v, o);
        }
        fn fetch_add(&self, v: u32, o: Ordering) -> u32 {
            loom::sync::atomic::AtomicU32::fetch_add(self, v, o)
        }

    }

    /// A two-slot ring of two-word slots in `loom`'s model atomics.
    struct Model {
        head: loom::sync::atomic::AtomicU64,
        seq: [loom::sync::atomic::AtomicU64; 2],
        len: [loom::sync::atomic::AtomicU32; 2],
        words: [[loom::sync::atomic::AtomicU64; 2]; 2],
        wake: [loom::sync::atomic::AtomicU32; 2],
    }
    impl RingMem for Model {
        type W64 = loom::sync::atomic::AtomicU64;
        type W32 = loom::sync::atomic::AtomicU32;
        fn slot_count(&self) -> u64 {
            2
        }
        fn words(&self) -> usize {
            2
        }
        fn head(&self) -> &loom::sync::atomic::AtomicU64 {
            &self.head
        }
        fn seq(&self, k: usize) -> &loom::sync::atomic::AtomicU64 {
            &self.seq[k]
        }
        fn len(&self, k: usize) -> &loom::sync::atomic::AtomicU32 {
            &self.len[k]
        }
        fn word(&self, k: usize, w: usize) -> &loom::sync::atomic::AtomicU64 {
            &self.words[k][w]
        }
        fn waiters(&self) -> &loom::sync::atomic::AtomicU32 {
            &self.wake[0]
        }
        fn wake_word(&self) -> &loom::sync::atomic::AtomicU32 {
            &self.wake[1]
        }
        fn fence(order: Ordering) {
            loom::sync::atomic::fence(order);
        }
    }

    impl Model {
        fn new() -> Self {
            use loom::sync::atomic::{AtomicU32 as U32, AtomicU64 as U64};
            Self {
                head: U64::new(0),
                seq: [U64::new(0), U64::new(0)],
                len: [U32::new(0), U32::new(0)],
                words: [[U64::new(0), U64::new(0)], [U64::new(0), U64::new(0)]],
                wake: [U32::new(0), U32::new(0)],
            }
        }
    }

    /// The protocol under every interleaving `loom` explores: a writer
    /// laps a two-slot ring while a reader reads; each message's words
    /// all hold its number, so a torn copy would show.
    #[test]
    fn loom_a_reader_never_accepts_a_torn_or_wrong_message_and_counts_what_it_missed() {
        use loom::sync::Arc;

        const MESSAGES: u64 = 3;
        let mut b = loom::model::Builder::new();
        b.preemption_bound = Some(3);
        b.check(|| {
            let m = Arc::new(Model::new());
            let w = m.clone();
            let writer = loom::thread::spawn(move || {
                for n in 0..MESSAGES {
                    let mut data = [0u8; 16];
                    data[..8].copy_from_slice(&(n + 1).to_le_bytes());
                    data[8..].copy_from_slice(&(n + 1).to_le_bytes());
                    write(&*w, n, &data);
                }
            });
            let mut cursor = 0u64;
            let (mut got, mut missed) = (0u64, 0u64);
            let mut out = [0u8; 16];
            // A bounded number of polls: the reader may finish early.
            for _ in 0..4 {
                match read(&*m, cursor, &mut out) {
                    Read::Got(len) => {
                        assert_eq!(len, 16);
                        let a = u64::from_le_bytes(out[..8].try_into().unwrap());
                        let b = u64::from_le_bytes(out[8..].try_into().unwrap());
                        assert_eq!((a, b), (cursor + 1, cursor + 1), "torn or wrong message");
                        got += 1;
                        cursor += 1;
                    }
                    Read::Empty => loom::thread::yield_now(),
                    Read::Lapped => {
                        let (at, n) = rejoin(&*m, cursor);
                        assert!(at <= MESSAGES, "rejoined past the writer: {at}");
                        missed += n;
                        cursor = at;
                    }
                }
                if cursor == MESSAGES {
                    break;
                }
            }
            writer.join().unwrap();
            // Every message up to the cursor was delivered or counted missed.
            assert_eq!(got + missed, cursor);
        });
    }

    /// The sleep/wake handshake under every interleaving: a reader that
    /// decides to sleep on message 0 while the writer publishes it is
    /// always woken — it either sees the message, or the writer sees it
    /// waiting and changes the futex word after the value the reader
    /// would wait on (so `FUTEX_WAIT` returns at once or is woken).
    #[test]
    fn loom_a_reader_that_goes_to_sleep_is_never_left_asleep() {
        use loom::sync::Arc;
        loom::model(|| {
            let m = Arc::new(Model::new());
            let w = m.clone();
            let writer = loom::thread::spawn(move || {
                write(&*w, 0, &[1u8; 16]);
                if sleepers(&*w) {
                    bump(&*w);
                }
            });
            let slept = prepare_sleep(&*m, 0);
            writer.join().unwrap();
            if let Some(seen) = slept {
                assert_ne!(
                    m.wake_word().load(Ordering::Relaxed),
                    seen,
                    "lost wake-up: the reader would sleep on an unchanged word"
                );
                end_sleep(&*m);
            }
            assert_eq!(m.waiters().load(Ordering::Relaxed), 0);
        });
    }

    /// Two readers about to sleep while the writer publishes: neither is
    /// left asleep on an unchanged word, and the count comes back to zero.
    #[test]
    fn loom_two_sleepers_are_both_woken_by_one_message() {
        use loom::sync::Arc;
        let mut b = loom::model::Builder::new();
        // Three threads: bounded preemptions keep the search to seconds.
        b.preemption_bound = Some(2);
        b.check(|| {
            let m = Arc::new(Model::new());
            let w = m.clone();
            let writer = loom::thread::spawn(move || {
                write(&*w, 0, &[1u8; 16]);
                if sleepers(&*w) {
                    bump(&*w);
                }
            });
            let r = m.clone();
            // Each reader that decides to sleep stays asleep (does not
            // leave) until the end: it would be waiting on the futex word.
            let other = loom::thread::spawn(move || prepare_sleep(&*r, 0));
            let slept = prepare_sleep(&*m, 0);
            writer.join().unwrap();
            let other_slept = other.join().unwrap();
            for s in [slept, other_slept].into_iter().flatten() {
                assert_ne!(m.wake_word().load(Ordering::Relaxed), s, "lost wake-up");
                end_sleep(&*m);
            }
            assert_eq!(m.waiters().load(Ordering::Relaxed), 0);
        });
    }

    /// A reader woken by one message leaves after another reader went to
    /// sleep for the next one: the second is still woken by the next
    /// message (a writer that took the whole count on a wake-up lost this
    /// one).
    #[test]
    fn loom_a_late_leave_does_not_take_another_sleepers_count() {
        use loom::sync::Arc;
        let mut b = loom::model::Builder::new();
        b.preemption_bound = Some(2);
        b.check(|| {
            let m = Arc::new(Model::new());
            // Reader A went to sleep for message 0 before anything.
            let a_seen = prepare_sleep(&*m, 0).expect("nothing published yet");
            let w = m.clone();
            let writer = loom::thread::spawn(move || {
                for n in 0..2 {
                    write(&*w, n, &[1u8; 16]);
                    if sleepers(&*w) {
                        bump(&*w);
                    }
                }
            });
            let r = m.clone();
            let reader_b = loom::thread::spawn(move || prepare_sleep(&*r, 1));
            // A wakes (or times out) and leaves, whenever.
            let _ = a_seen;
            end_sleep(&*m);
            writer.join().unwrap();
            if let Some(seen) = reader_b.join().unwrap() {
                assert_ne!(
                    m.wake_word().load(Ordering::Relaxed),
                    seen,
                    "lost wake-up: B sleeps on an unchanged word with message 1 published"
                );
                end_sleep(&*m);
            }
            assert_eq!(m.waiters().load(Ordering::Relaxed), 0);
        });
    }
}
