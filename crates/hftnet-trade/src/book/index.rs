//! Order reference → entry, by direct indexing.
//!
//! ITCH order reference numbers are unique for the day and are handed out
//! in increasing order, so the live refs are dense near the newest one. The
//! index is a sliding window of `ref_window` refs, cut into chunks of
//! [`CHUNK`] entries: a lookup is one subtraction, one shift and two loads.
//! An entry is any small `Copy` value with an empty marker ([`Entry`]): a
//! slot number (`u32`, 16 KiB a chunk; the matching engine) or the whole
//! order record (the book, 16 bytes, 64 KiB a chunk), so a lookup touches
//! one cache line and needs no second table.
//!
//! - The window starts at the first ref seen (rounded down to a chunk) and
//!   grows chunk by chunk as refs increase.
//! - A chunk whose last live entry goes away gives its buffer back to a spare
//!   pool (the newest chunk keeps its buffer); empty chunks at the front are
//!   dropped and the window's base moves on. Buffers are only allocated when
//!   the spare pool is empty, so at most `ref_window / CHUNK` of them ever
//!   exist and the steady state allocates nothing.
//! - When the window would exceed `ref_window` refs, the oldest chunks are
//!   evicted; the orders still resting in them (old, long-lived orders) move
//!   to the `far` hash map. Refs below the window and refs more than one
//!   window ahead of it (a jump in numbering) go to `far` as well, until
//!   [`JUMP_CONFIRM`] such refs in a row show that the numbering really
//!   moved: then the whole window moves there (its live refs go to `far`).
//!   A miss in the window falls back to `far` only when `far` is not empty.
//!
//! Memory: `size_of::<T>() × ref_window` bytes at most for the window plus
//! ~8 + `size_of::<T>()` bytes (times the map's load factor) per far entry,
//! against a hash map's cost on every message. Nothing here is order-book
//! specific.

use std::collections::{HashMap, VecDeque};
use std::hash::{BuildHasher, Hasher};

/// log2 of [`CHUNK`].
pub(crate) const CHUNK_SHIFT: u32 = 12;
/// Refs per chunk of the direct index.
pub(crate) const CHUNK: usize = 1 << CHUNK_SHIFT;
const MASK: u64 = CHUNK as u64 - 1;
/// The "no slot" marker; slot indices are below it.
pub(crate) const NONE: u32 = u32::MAX;
/// Consecutive inserts more than a window ahead that move the window.
pub(crate) const JUMP_CONFIRM: u32 = 64;
/// Entries reserved up front in the far map.
const FAR_RESERVE: usize = 1024;

/// What the index stores per ref: a `Copy` value with an empty marker
/// that no live entry equals.
pub(crate) trait Entry: Copy {
    /// The marker of a ref not indexed.
    const EMPTY: Self;
    /// Whether this is [`Entry::EMPTY`].
    fn is_empty(&self) -> bool;
}

/// A slot number; [`NONE`] is the empty marker.
impl Entry for u32 {
    const EMPTY: u32 = NONE;
    #[inline]
    fn is_empty(&self) -> bool {
        *self == NONE
    }
}

type Slots<T> = Box<[T; CHUNK]>;

fn new_slots<T: Entry>() -> Slots<T> {
    // Built on the heap: a 64 KiB array would pass through the stack.
    // Resident at allocation: left to `calloc`, the first lookup would map
    // the zero page and the first insert take a copy-on-write fault, which
    // flushes the TLB of every CPU the process runs on (an IPI per page
    // once a second thread runs, e.g. a replay on two threads).
    let v: Box<[T]> = crate::mem::resident_vec(T::EMPTY, CHUNK).into_boxed_slice();
    match v.try_into() {
        Ok(b) => b,
        Err(_) => unreachable!("a boxed slice of CHUNK entries"),
    }
}

/// One chunk of the window: its buffer (absent when it holds nothing) and
/// how many of its entries are live.
struct Chunk<T> {
    slots: Option<Slots<T>>,
    live: u32,
}

/// Sizes of the index, for capacity planning and tests.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct RefIndexStats {
    /// First ref covered by the window.
    pub window_base: u64,
    /// Chunks spanned by the window (with or without a buffer).
    pub window_chunks: usize,
    /// Chunk buffers allocated so far (in the window or spare); each is
    /// [`REF_CHUNK`](crate::book::REF_CHUNK) entries (16 KiB of slot
    /// numbers, 64 KiB of the book's orders).
    pub chunk_buffers: usize,
    /// Refs held in the direct window.
    pub direct_refs: usize,
    /// Refs held in the far map (outside the window).
    pub far_refs: usize,
    /// Chunks evicted from the front while they still held live refs.
    pub evicted_chunks: u64,
    /// Times a confirmed jump in numbering moved the whole window.
    pub relocations: u64,
}

/// The ref → entry index (a slot number by default). The caller
/// guarantees that a ref is inserted only when it is absent and removed
/// only when present (it looks it up first), and never inserts
/// [`Entry::EMPTY`].
pub(crate) struct RefIndex<T: Entry = u32> {
    base: u64,
    chunks: VecDeque<Chunk<T>>,
    max_chunks: usize,
    spare: Vec<Slots<T>>,
    far: HashMap<u64, T, RefHashBuilder>,
    direct_live: usize,
    buffers: usize,
    /// Buffers allocated after construction (beyond the preallocation).
    grown: u64,
    evicted_chunks: u64,
    ahead_streak: u32,
    relocations: u64,
}

impl<T: Entry> std::fmt::Debug for RefIndex<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RefIndex")
            .field("max_chunks", &self.max_chunks)
            .field("stats", &self.stats())
            .finish_non_exhaustive()
    }
}

impl<T: Entry> RefIndex<T> {
    /// `window` refs at most in the direct window (a multiple of [`CHUNK`],
    /// checked by the config), `prealloc` refs' worth of buffers allocated now.
    pub(crate) fn new(window: usize, prealloc: usize) -> Self {
        let max_chunks = window / CHUNK;
        let pre = prealloc.div_ceil(CHUNK).min(max_chunks);
        let mut far = HashMap::with_hasher(RefHashBuilder);
        far.reserve(FAR_RESERVE);
        RefIndex {
            base: 0,
            chunks: VecDeque::with_capacity(max_chunks + 1),
            max_chunks,
            spare: (0..pre).map(|_| new_slots()).collect(),
            far,
            direct_live: 0,
            buffers: pre,
            grown: 0,
            evicted_chunks: 0,
            ahead_streak: 0,
            relocations: 0,
        }
    }

    /// Allocates buffers into the spare pool until `refs` refs' worth
    /// exist (at most the window's), as the preallocation of
    /// [`RefIndex::new`] does, e.g. on another thread than the one that
    /// made the index; not counted in [`RefIndex::grown`].
    pub(crate) fn reserve(&mut self, refs: usize) {
        let want = refs.div_ceil(CHUNK).min(self.max_chunks);
        while self.buffers < want {
            self.spare.push(new_slots());
            self.buffers += 1;
        }
    }

    /// The entry of `r`, if indexed.
    #[inline]
    pub(crate) fn get(&self, r: u64) -> Option<T> {
        // Below the base the subtraction wraps to a huge offset, so one
        // comparison covers both ends of the window.
        let off = r.wrapping_sub(self.base);
        let c = off >> CHUNK_SHIFT;
        if c < self.chunks.len() as u64
            && let Some(slots) = &self.chunks[c as usize].slots
        {
            let s = slots[(off & MASK) as usize];
            if !s.is_empty() {
                return Some(s);
            }
        }
        if self.far.is_empty() {
            None
        } else {
            self.far.get(&r).copied()
        }
    }

    /// The entry of `r` to change in place, if indexed. The caller must
    /// not make it [`Entry::EMPTY`] (remove it instead).
    #[inline]
    pub(crate) fn get_mut(&mut self, r: u64) -> Option<&mut T> {
        let off = r.wrapping_sub(self.base);
        let c = off >> CHUNK_SHIFT;
        if c < self.chunks.len() as u64
            && let Some(slots) = &mut self.chunks[c as usize].slots
        {
            let s = &mut slots[(off & MASK) as usize];
            if !s.is_empty() {
                return Some(s);
            }
        }
        if self.far.is_empty() {
            None
        } else {
            self.far.get_mut(&r)
        }
    }

    /// The address of `r`'s entry in the direct window, for a prefetch
    /// hint; `None` outside the window or in a chunk without a buffer.
    #[inline]
    pub(crate) fn entry_hint(&self, r: u64) -> Option<*const T> {
        let off = r.wrapping_sub(self.base);
        let c = off >> CHUNK_SHIFT;
        if c < self.chunks.len() as u64
            && let Some(slots) = &self.chunks[c as usize].slots
        {
            return Some(slots.as_ptr().wrapping_add((off & MASK) as usize));
        }
        None
    }

    /// The entry of `r` if it is in the direct window (the far map is not
    /// searched): a cheap guess for prefetching.
    #[inline]
    pub(crate) fn get_direct(&self, r: u64) -> Option<T> {
        let off = r.wrapping_sub(self.base);
        let c = off >> CHUNK_SHIFT;
        if c < self.chunks.len() as u64
            && let Some(slots) = &self.chunks[c as usize].slots
        {
            let s = slots[(off & MASK) as usize];
            if !s.is_empty() {
                return Some(s);
            }
        }
        None
    }

    /// Indexes `r` → `slot`; `r` must be absent, `slot` not empty.
    #[inline]
    pub(crate) fn insert(&mut self, r: u64, slot: T) {
        debug_assert!(self.get(r).is_none(), "ref {r} inserted twice");
        // The common case first: a chunk of the window that has its buffer.
        let off = r.wrapping_sub(self.base);
        let c = off >> CHUNK_SHIFT;
        if c < self.chunks.len() as u64 {
            let chunk = &mut self.chunks[c as usize];
            if let Some(slots) = &mut chunk.slots {
                slots[(off & MASK) as usize] = slot;
                chunk.live += 1;
                self.direct_live += 1;
                self.ahead_streak = 0;
                return;
            }
        }
        self.insert_slow(r, slot);
    }

    /// [`RefIndex::insert`] outside the buffered window: the far map, a
    /// new chunk, a move of the window.
    #[inline(never)]
    fn insert_slow(&mut self, r: u64, slot: T) {
        if self.chunks.is_empty() {
            self.base = r & !MASK;
        }
        if r < self.base {
            self.far.insert(r, slot);
            return;
        }
        let ahead = (r - self.base) >> CHUNK_SHIFT;
        let len = self.chunks.len() as u64;
        if ahead >= len {
            if ahead - len >= self.max_chunks as u64 {
                // More than a whole window past the end: a jump in
                // numbering. A one-off outlier goes to the far map; a jump
                // that the following refs confirm moves the window there.
                if self.direct_live != 0 {
                    self.ahead_streak += 1;
                    if self.ahead_streak < JUMP_CONFIRM {
                        self.far.insert(r, slot);
                        return;
                    }
                    self.relocations += 1;
                    while !self.chunks.is_empty() {
                        self.evict_front();
                    }
                }
                self.rebase(r);
                self.grow_to(0);
            } else {
                let need = ahead as usize + 1;
                for _ in self.max_chunks..need {
                    self.evict_front();
                }
                self.grow_to(((r - self.base) >> CHUNK_SHIFT) as usize);
            }
        }
        // Growing may have trimmed empty chunks at the front (never the
        // last one, which is r's), so the index is computed afresh.
        let c = ((r - self.base) >> CHUNK_SHIFT) as usize;
        let chunk = &mut self.chunks[c];
        let slots = match &mut chunk.slots {
            Some(s) => s,
            none => {
                let buf = match self.spare.pop() {
                    Some(b) => b,
                    None => {
                        self.buffers += 1;
                        self.grown += 1;
                        new_slots()
                    }
                };
                none.insert(buf)
            }
        };
        slots[(r & MASK) as usize] = slot;
        chunk.live += 1;
        self.direct_live += 1;
        self.ahead_streak = 0;
    }

    /// Removes `r` and returns its entry.
    #[inline]
    pub(crate) fn remove(&mut self, r: u64) -> Option<T> {
        let off = r.wrapping_sub(self.base);
        let c = off >> CHUNK_SHIFT;
        if c < self.chunks.len() as u64 {
            let c = c as usize;
            let chunk = &mut self.chunks[c];
            if let Some(slots) = &mut chunk.slots {
                let e = &mut slots[(off & MASK) as usize];
                if !e.is_empty() {
                    let s = *e;
                    *e = T::EMPTY;
                    chunk.live -= 1;
                    self.direct_live -= 1;
                    if chunk.live == 0 {
                        self.release(c);
                    }
                    return Some(s);
                }
            }
        }
        if self.far.is_empty() {
            None
        } else {
            self.far.remove(&r)
        }
    }

    /// Sizes, for tests and capacity planning.
    pub(crate) fn stats(&self) -> RefIndexStats {
        RefIndexStats {
            window_base: self.base,
            window_chunks: self.chunks.len(),
            chunk_buffers: self.buffers,
            direct_refs: self.direct_live,
            far_refs: self.far.len(),
            evicted_chunks: self.evicted_chunks,
            relocations: self.relocations,
        }
    }

    /// Chunk buffers allocated after construction (the window outgrew its
    /// preallocation); recycled buffers are not counted again.
    pub(crate) fn grown(&self) -> u64 {
        self.grown
    }

    /// Number of refs indexed.
    pub(crate) fn len(&self) -> usize {
        self.direct_live + self.far.len()
    }

    /// Every (ref, entry) pair, in no particular order (invariant checks).
    pub(crate) fn for_each(&self, mut f: impl FnMut(u64, T)) {
        for (c, chunk) in self.chunks.iter().enumerate() {
            if let Some(slots) = &chunk.slots {
                let first = self.base.wrapping_add((c as u64) << CHUNK_SHIFT);
                for (i, &s) in slots.iter().enumerate() {
                    if !s.is_empty() {
                        f(first.wrapping_add(i as u64), s);
                    }
                }
            }
        }
        for (&r, &s) in &self.far {
            f(r, s);
        }
    }

    /// Removes every entry for which `keep` says false, in no particular
    /// order; O(window + far). Chunks left empty give their buffers back as
    /// [`RefIndex::remove`] would. No allocation beyond the spare pool's.
    pub(crate) fn retain(&mut self, mut keep: impl FnMut(u64, &T) -> bool) {
        let mut removed = 0usize;
        for (c, chunk) in self.chunks.iter_mut().enumerate() {
            if let Some(slots) = &mut chunk.slots {
                let first = self.base.wrapping_add((c as u64) << CHUNK_SHIFT);
                for (i, e) in slots.iter_mut().enumerate() {
                    if !e.is_empty() && !keep(first.wrapping_add(i as u64), e) {
                        *e = T::EMPTY;
                        chunk.live -= 1;
                        removed += 1;
                    }
                }
            }
        }
        self.direct_live -= removed;
        self.far.retain(|&r, e| keep(r, e));
        // As `release`: an empty chunk gives its buffer back unless it is
        // the last one; empty chunks at the front go.
        let last = self.chunks.len().saturating_sub(1);
        for c in 0..last {
            if self.chunks[c].live == 0
                && let Some(buf) = self.chunks[c].slots.take()
            {
                self.spare.push(buf);
            }
        }
        self.trim_front();
    }

    /// Checks the chunk bookkeeping; the first inconsistency as text.
    pub(crate) fn check(&self) -> Result<(), String> {
        let mut total = 0usize;
        for (c, chunk) in self.chunks.iter().enumerate() {
            let live = chunk
                .slots
                .as_ref()
                .map_or(0, |s| s.iter().filter(|e| !e.is_empty()).count());
            if live != chunk.live as usize {
                return Err(format!(
                    "chunk {c} counts {} live refs but holds {live}",
                    chunk.live
                ));
            }
            total += live;
        }
        if total != self.direct_live {
            return Err(format!(
                "window counts {} live refs but its chunks hold {total}",
                self.direct_live
            ));
        }
        if self.chunks.len() > self.max_chunks {
            return Err(format!(
                "window spans {} chunks, more than its {}",
                self.chunks.len(),
                self.max_chunks
            ));
        }
        for s in &self.spare {
            if s.iter().any(|e| !e.is_empty()) {
                return Err("a spare chunk buffer is not empty".to_owned());
            }
        }
        Ok(())
    }

    /// Appends empty chunks until index `c` exists.
    fn grow_to(&mut self, c: usize) {
        // A tail that went empty kept its buffer; once it is no longer the
        // tail, give the buffer back.
        if c >= self.chunks.len()
            && let Some(tail) = self.chunks.back_mut()
            && tail.live == 0
            && let Some(buf) = tail.slots.take()
        {
            self.spare.push(buf);
        }
        while self.chunks.len() <= c {
            self.chunks.push_back(Chunk {
                slots: None,
                live: 0,
            });
        }
        self.trim_front();
    }

    /// Drops the front chunk, moving its live refs to the far map.
    fn evict_front(&mut self) {
        if let Some(chunk) = self.chunks.pop_front()
            && let Some(mut buf) = chunk.slots
        {
            if chunk.live > 0 {
                self.evicted_chunks += 1;
                for (i, e) in buf.iter_mut().enumerate() {
                    if !e.is_empty() {
                        self.far.insert(self.base.wrapping_add(i as u64), *e);
                        *e = T::EMPTY;
                    }
                }
                self.direct_live -= chunk.live as usize;
            }
            self.spare.push(buf);
        }
        // Wraps only past the last chunk of the u64 range, which is never
        // evicted in favour of a higher one; a rebase follows in any case.
        self.base = self.base.wrapping_add(CHUNK as u64);
    }

    /// Chunk `c` just went empty.
    fn release(&mut self, c: usize) {
        if c + 1 < self.chunks.len()
            && let Some(buf) = self.chunks[c].slots.take()
        {
            self.spare.push(buf);
        }
        self.trim_front();
    }

    /// Drops empty chunks at the front (never the last one).
    fn trim_front(&mut self) {
        while self.chunks.len() > 1 && self.chunks[0].live == 0 {
            self.evict_front();
        }
    }

    /// Restarts an empty window at `r`.
    fn rebase(&mut self, r: u64) {
        debug_assert_eq!(self.direct_live, 0);
        while let Some(chunk) = self.chunks.pop_front() {
            if let Some(buf) = chunk.slots {
                self.spare.push(buf);
            }
        }
        self.base = r & !MASK;
    }
}

/// A fast, deterministic hasher for the far map's u64 keys (splitmix64's
/// finaliser). The feed is trusted, so no DoS-resistant hashing.
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RefHashBuilder;

impl BuildHasher for RefHashBuilder {
    type Hasher = RefHasher;
    fn build_hasher(&self) -> RefHasher {
        RefHasher(0)
    }
}

/// See [`RefHashBuilder`].
#[derive(Clone, Copy, Debug, Default)]
pub(crate) struct RefHasher(u64);

impl Hasher for RefHasher {
    fn finish(&self) -> u64 {
        mix64(self.0)
    }
    fn write(&mut self, bytes: &[u8]) {
        for &b in bytes {
            self.0 = (self.0 ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
        }
    }
    fn write_u64(&mut self, v: u64) {
        self.0 ^= v;
    }
}

/// splitmix64's finaliser: a bijective, well-spread 64-bit mix.
#[inline]
pub(crate) fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dense_refs_stay_in_the_window() {
        let mut ix = RefIndex::new(4 * CHUNK, 0);
        for r in 1000..1000 + 3 * CHUNK as u64 {
            ix.insert(r, r as u32);
        }
        assert_eq!(ix.stats().far_refs, 0);
        assert_eq!(ix.get(1000 + 17), Some(1017));
        assert_eq!(ix.remove(1017), Some(1017));
        assert_eq!(ix.get(1017), None);
        assert_eq!(ix.remove(1017), None);
        ix.check().unwrap();
    }

    #[test]
    fn old_refs_move_to_far_and_come_back_out() {
        let mut ix = RefIndex::new(2 * CHUNK, 0);
        ix.insert(5, 0);
        for r in 6..6 + 4 * CHUNK as u64 {
            ix.insert(r, 1);
            ix.remove(r);
        }
        let st = ix.stats();
        assert_eq!(st.far_refs, 1, "{st:?}");
        assert_eq!(st.evicted_chunks, 1);
        assert!(st.window_chunks <= 2);
        assert_eq!(ix.get(5), Some(0));
        // Below the window: far.
        ix.insert(7, 3);
        assert_eq!(ix.stats().far_refs, 2);
        assert_eq!(ix.remove(5), Some(0));
        assert_eq!(ix.remove(7), Some(3));
        assert_eq!(ix.len(), 0);
        ix.check().unwrap();
        assert!(ix.stats().chunk_buffers <= 2);
    }

    #[test]
    fn a_jump_goes_far_unless_the_window_is_empty() {
        let mut ix = RefIndex::new(2 * CHUNK, CHUNK);
        ix.insert(10, 1);
        ix.insert(1 << 40, 2);
        assert_eq!(ix.stats().far_refs, 1);
        assert_eq!(ix.get(1 << 40), Some(2));
        ix.remove(10);
        ix.insert((1 << 40) + 1, 3);
        let st = ix.stats();
        assert_eq!(st.window_base, 1 << 40);
        assert_eq!(st.direct_refs, 1);
        // The far entry inside the new window is still found.
        assert_eq!(ix.get(1 << 40), Some(2));
        assert_eq!(ix.remove(1 << 40), Some(2));
        ix.check().unwrap();
    }

    #[test]
    fn a_confirmed_jump_moves_the_window() {
        let mut ix = RefIndex::new(2 * CHUNK, 0);
        ix.insert(1, 1);
        let jump = 1 << 30;
        for k in 0..u64::from(JUMP_CONFIRM) + 10 {
            ix.insert(jump + k, 2);
        }
        let st = ix.stats();
        assert_eq!(st.relocations, 1, "{st:?}");
        assert_eq!(st.window_base, (jump + u64::from(JUMP_CONFIRM) - 1) & !MASK);
        assert_eq!(st.direct_refs, 11);
        assert_eq!(st.far_refs, usize::try_from(JUMP_CONFIRM).unwrap());
        assert_eq!(ix.get(1), Some(1));
        assert_eq!(ix.get(jump), Some(2));
        assert_eq!(ix.get(jump + 70), Some(2));
        ix.check().unwrap();
    }

    #[test]
    fn retain_removes_in_the_window_and_far() {
        let mut ix = RefIndex::new(2 * CHUNK, 0);
        ix.insert(3, 3);
        for r in CHUNK as u64..4 * CHUNK as u64 {
            ix.insert(r, (r % 3) as u32);
        }
        assert!(ix.stats().far_refs > 0);
        let before = ix.len();
        ix.retain(|r, &s| r == 3 || s != 0);
        ix.check().unwrap();
        assert_eq!(ix.get(3), Some(3));
        assert_eq!(ix.get(3 * CHUNK as u64), None);
        assert_eq!(ix.get(3 * CHUNK as u64 + 1), Some(1));
        let zeros = (CHUNK as u64..4 * CHUNK as u64)
            .filter(|r| r % 3 == 0)
            .count();
        assert_eq!(ix.len(), before - zeros);
        ix.retain(|_, _| false);
        ix.check().unwrap();
        assert_eq!(ix.len(), 0);
        assert!(ix.stats().window_chunks <= 1);
    }

    #[test]
    fn empty_middle_chunks_give_their_buffers_back() {
        let mut ix = RefIndex::new(8 * CHUNK, 0);
        ix.insert(0, 0);
        for r in 1..5 * CHUNK as u64 {
            ix.insert(r, 1);
        }
        for r in 1..4 * CHUNK as u64 {
            ix.remove(r);
        }
        ix.check().unwrap();
        assert_eq!(ix.spare.len(), 3);
        assert_eq!(ix.len(), 1 + CHUNK);
    }
}
