//! Memory mappings owned by a value: [`Mapping`] maps anonymous memory (an
//! AF_XDP UMEM, a ring's slots) or a file descriptor shared read-write
//! between processes (a shared-memory ring), and [`FileMap`] a whole file
//! read-only, to read it in place instead of copying it through `read`; both
//! unmap on drop.
//!
//! Layer: `hftnet-sys`, used when a transport is opened, never on the hot
//! path (the hot path reads and writes the memory, not the mapping).
//!
//! Invariants: a [`Mapping`] is exactly one successful `mmap` (page aligned,
//! `len` bytes, readable and writable), unmapped exactly once, when it is
//! dropped. It hands out raw pointers only, never a Rust reference to the
//! whole area: the kernel (a UMEM, a packet ring) or another process (a
//! shared mapping) may write into it at any time, so whoever dereferences a
//! pointer states, in its own `SAFETY` comment, which part is theirs and when.
//!
//! Must never: unmap memory it did not map. It cannot know who still uses
//! the memory: its owner keeps the `Mapping` alive, and drops it last, for as
//! long as anything — the kernel included — may touch it.
//!
//! # References
//! `mmap(2)`, `munmap(2)`, `madvise(2)`.

use std::fs::File;
use std::os::fd::{AsRawFd, BorrowedFd};
use std::ptr::NonNull;

use crate::error::{Result, SyscallError};

/// A readable and writable memory mapping, unmapped on drop.
pub struct Mapping {
    ptr: NonNull<u8>,
    len: usize,
}

// SAFETY: the mapping is plain memory owned by this value; moving the value
// to another thread moves the only handle that unmaps it.
unsafe impl Send for Mapping {}

// SAFETY: a shared reference only gives out the address and the length;
// every access to the memory goes through a raw pointer whose user answers
// for it, so sharing the handle between threads adds nothing unsound.
unsafe impl Sync for Mapping {}

impl std::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapping")
            .field("ptr", &self.ptr)
            .field("len", &self.len)
            .finish()
    }
}

impl Mapping {
    /// `mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS
    /// [| MAP_POPULATE], -1, 0)`: `len` bytes of zeroed memory private to this
    /// process. With `populate` the kernel faults every page in now, so the
    /// first touch on the hot path does not (and a shortage of memory shows
    /// here rather than later).
    ///
    /// # Errors
    /// `call = "mmap(MAP_ANONYMOUS)"`: `EINVAL` for a length of 0, `ENOMEM`
    /// when the memory or the address space is short (or `RLIMIT_MEMLOCK`
    /// is exceeded under `mlockall(MCL_FUTURE)`).
    pub fn anonymous(len: usize, populate: bool) -> Result<Self> {
        let populate = if populate { libc::MAP_POPULATE } else { 0 };
        // SAFETY: a new anonymous mapping at an address the kernel chooses:
        // no existing memory is touched; the result is checked in `checked`.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_PRIVATE | libc::MAP_ANONYMOUS | populate,
                -1,
                0,
            )
        };
        Self::checked("mmap(MAP_ANONYMOUS)", p, len)
    }

    /// `mmap(NULL, len, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0)`: the first
    /// `len` bytes of what `fd` refers to (a file, a `memfd`, a POSIX
    /// shared-memory object), shared with every other process that maps it:
    /// their stores are seen here and ours there. The mapping stays valid
    /// after `fd` is closed. Touching pages beyond the end of the file
    /// raises `SIGBUS`: size the file (`ftruncate`) before mapping it.
    ///
    /// # Errors
    /// `call = "mmap(MAP_SHARED)"`: `EACCES` when `fd` is not open for both
    /// reading and writing, `ENODEV` when it cannot be mapped (a socket, a
    /// pipe), `EINVAL` for a length of 0, `ENOMEM`.
    pub fn shared_fd(fd: BorrowedFd<'_>, len: usize) -> Result<Self> {
        // SAFETY: a new mapping at an address the kernel chooses of a
        // descriptor that is open (it is borrowed); no existing memory is
        // touched; the result is checked in `checked`.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ | libc::PROT_WRITE,
                libc::MAP_SHARED,
                fd.as_raw_fd(),
                0,
            )
        };
        Self::checked("mmap(MAP_SHARED)", p, len)
    }

    /// `fallocate(fd, 0, 0, len)`: gives the file `fd` refers to `len` bytes
    /// of real storage now (zeroed), so that a [`shared_fd`](Self::shared_fd)
    /// mapping of it never faults on a full file system. On tmpfs
    /// (`/dev/shm`) a page is only allocated when first touched, and a touch
    /// that finds the file system full raises `SIGBUS`; this turns that into
    /// an error here.
    ///
    /// # Errors
    /// `call = "fallocate"`: `ENOSPC` when the file system is full (tmpfs:
    /// its `size=` limit), `EFBIG` beyond the file size limit,
    /// `EOPNOTSUPP` on a file system without it, `EBADF`/`EINVAL` for a
    /// descriptor not open for writing or a length of 0.
    pub fn allocate(fd: BorrowedFd<'_>, len: usize) -> Result<()> {
        let Ok(l) = libc::off_t::try_from(len) else {
            return Err(SyscallError::from_errno("fallocate", libc::EFBIG));
        };
        loop {
            // SAFETY: plain integers; the descriptor is open (borrowed).
            let r = unsafe { libc::fallocate(fd.as_raw_fd(), 0, 0, l) };
            if r == 0 {
                return Ok(());
            }
            let e = SyscallError::last("fallocate");
            if e.errno() != Some(libc::EINTR) {
                return Err(e);
            }
        }
    }

    /// Turns the result of `mmap` into a `Mapping` or the error of `call`.
    fn checked(call: &'static str, p: *mut libc::c_void, len: usize) -> Result<Self> {
        if p == libc::MAP_FAILED {
            return Err(SyscallError::last(call));
        }
        match NonNull::new(p.cast::<u8>()) {
            Some(ptr) => Ok(Self { ptr, len }),
            None => {
                // Only possible for a mapping at address 0, which the kernel
                // never chooses (`vm.mmap_min_addr`); give it back, refuse it.
                // SAFETY: exactly the mapping `mmap` just returned.
                unsafe { libc::munmap(p, len) };
                Err(SyscallError::from_errno(call, libc::EFAULT))
            }
        }
    }

    /// The first byte of the mapping (page aligned).
    #[must_use]
    pub fn as_ptr(&self) -> *mut u8 {
        self.ptr.as_ptr()
    }

    /// [`as_ptr`](Self::as_ptr) as a `NonNull`, for APIs that take one (an
    /// AF_XDP UMEM region).
    #[must_use]
    pub fn as_non_null(&self) -> NonNull<u8> {
        self.ptr
    }

    /// Length in bytes, as asked (the kernel rounds the mapping itself up
    /// to whole pages).
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Always false: the kernel refuses empty mappings.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }
}

impl Drop for Mapping {
    fn drop(&mut self) {
        // SAFETY: exactly the mapping made in `checked`, unmapped once; the
        // owner keeps every user of the memory (kernel rings included) alive
        // only as long as this value, as the module's invariants require.
        // munmap of a live mapping of ours cannot fail.
        unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
    }
}

/// What a [`FileMap`] asks of the kernel besides the mapping itself.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct FileAdvice {
    /// `madvise(MADV_SEQUENTIAL)`: the file is read once, front to back, so
    /// the kernel reads ahead aggressively and may drop pages behind.
    pub sequential: bool,
    /// `madvise(MADV_HUGEPAGE)`: map the file's page cache with huge pages
    /// where the kernel and the file system can (large folios, a mapping
    /// aligned to 2 MiB), so a long read takes fewer TLB misses and faults.
    /// A kernel that refuses it is not an error ([`FileMap::huge_pages`]).
    pub huge_pages: bool,
    /// `MAP_POPULATE`: map every page now (reading the file if it is not
    /// cached), so that reading the mapping takes no page fault.
    pub populate: bool,
}

/// A read-only, private mapping of a whole regular file, unmapped on drop.
///
/// The bytes are read in place ([`as_slice`](Self::as_slice)): no copy
/// into a buffer, no `read` per megabyte. The file must not be truncated
/// or rewritten while it is mapped: pages cut off by a truncation raise
/// `SIGBUS` when touched, and a rewrite shows through the mapping — as for
/// every reader of a mapped file; map only files nobody writes meanwhile
/// (a recorded day), and read anything else through `read`.
pub struct FileMap {
    ptr: NonNull<u8>,
    len: usize,
    huge_pages: bool,
    sequential: bool,
}

// SAFETY: the mapping is read-only memory owned by this value; sending the
// value moves the only handle that unmaps it.
unsafe impl Send for FileMap {}

// SAFETY: the memory is never written through the mapping (PROT_READ), so
// shared references on several threads only read.
unsafe impl Sync for FileMap {}

impl std::fmt::Debug for FileMap {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("FileMap")
            .field("len", &self.len)
            .field("huge_pages", &self.huge_pages)
            .field("sequential", &self.sequential)
            .finish_non_exhaustive()
    }
}

impl FileMap {
    /// `mmap(NULL, size, PROT_READ, MAP_PRIVATE [| MAP_POPULATE], fd, 0)` of
    /// the whole of `file` (its size now), then the `madvise` calls asked
    /// for in `advice`. An empty file gives an empty map (no mapping: the
    /// kernel refuses empty ones). The mapping stays valid after `file` is
    /// closed.
    ///
    /// # Errors
    /// `call = "fstat"` when the size cannot be read; `call = "mmap(file)"`:
    /// `ENODEV` for what is not a regular file (a pipe, a character device:
    /// read those through `read`), `EACCES` for a descriptor not open for
    /// reading, `EFBIG` for a file larger than the address space, `ENOMEM`.
    /// A refused `madvise` is not an error: see [`huge_pages`](Self::huge_pages)
    /// and [`sequential`](Self::sequential).
    pub fn open(file: &File, advice: FileAdvice) -> Result<Self> {
        let meta = file.metadata().map_err(|e| {
            SyscallError::from_errno("fstat", e.raw_os_error().unwrap_or(libc::EIO))
        })?;
        if !meta.is_file() {
            return Err(SyscallError::from_errno("mmap(file)", libc::ENODEV));
        }
        let Ok(len) = usize::try_from(meta.len()) else {
            return Err(SyscallError::from_errno("mmap(file)", libc::EFBIG));
        };
        if len == 0 {
            return Ok(Self {
                ptr: NonNull::dangling(),
                len: 0,
                huge_pages: false,
                sequential: false,
            });
        }
        let populate = if advice.populate {
            libc::MAP_POPULATE
        } else {
            0
        };
        // SAFETY: a new read-only mapping at an address the kernel chooses,
        // of a descriptor that is open (borrowed from `file`); no existing
        // memory is touched; the result is checked below.
        let p = unsafe {
            libc::mmap(
                std::ptr::null_mut(),
                len,
                libc::PROT_READ,
                libc::MAP_PRIVATE | populate,
                file.as_raw_fd(),
                0,
            )
        };
        if p == libc::MAP_FAILED {
            return Err(SyscallError::last("mmap(file)"));
        }
        let Some(ptr) = NonNull::new(p.cast::<u8>()) else {
            // Address 0 is never chosen by the kernel (`vm.mmap_min_addr`).
            // SAFETY: exactly the mapping `mmap` just returned.
            unsafe { libc::munmap(p, len) };
            return Err(SyscallError::from_errno("mmap(file)", libc::EFAULT));
        };
        let mut m = Self {
            ptr,
            len,
            huge_pages: false,
            sequential: false,
        };
        // Huge pages first: the kernel picks the readahead size for a
        // huge-page mapping when it sees the flag.
        if advice.huge_pages {
            m.huge_pages = m.advise(libc::MADV_HUGEPAGE);
        }
        if advice.sequential {
            m.sequential = m.advise(libc::MADV_SEQUENTIAL);
        }
        Ok(m)
    }

    /// Maps the pages of bytes `range` of the file now
    /// (`madvise(MADV_POPULATE_READ)`, reading them if they are not cached),
    /// so reading them later takes no page fault — what
    /// [`FileAdvice::populate`] does for the whole file at `open`, for a
    /// part, from any thread (e.g. one that is idle while another starts
    /// reading the front). The range is clamped to the file and widened to
    /// whole pages. False when the kernel refused (before 5.14: `EINVAL`),
    /// which changes nothing but that the pages are faulted in when read.
    pub fn populate(&self, range: std::ops::Range<usize>) -> bool {
        let end = range.end.min(self.len);
        if range.start >= end {
            return true;
        }
        // SAFETY: sysconf has no preconditions.
        let page = usize::try_from(unsafe { libc::sysconf(libc::_SC_PAGESIZE) })
            .unwrap_or(4096)
            .max(1);
        let start = range.start / page * page;
        // SAFETY: [start, end) lies within this live mapping (start rounded
        // down to its page, the mapping starts on a page); MADV_POPULATE_READ
        // only faults the pages in, changing no byte.
        unsafe {
            libc::madvise(
                self.ptr.as_ptr().add(start).cast(),
                end - start,
                libc::MADV_POPULATE_READ,
            ) == 0
        }
    }

    #[cfg(test)]
    fn as_ptr_for_tests(&self) -> *const u8 {
        self.ptr.as_ptr()
    }

    /// `madvise` of the whole mapping; whether the kernel took it.
    fn advise(&self, advice: libc::c_int) -> bool {
        // SAFETY: the range is exactly this live mapping; advice changes no
        // byte of it (MADV_HUGEPAGE and MADV_SEQUENTIAL are hints).
        unsafe { libc::madvise(self.ptr.as_ptr().cast(), self.len, advice) == 0 }
    }

    /// The file's bytes, in place.
    #[must_use]
    pub fn as_slice(&self) -> &[u8] {
        // SAFETY: `ptr` is a live PROT_READ mapping of `len` bytes (or a
        // dangling pointer with `len` 0, valid for an empty slice), kept
        // until `self` is dropped, which the borrow outlives not; nothing
        // writes it through this process. (A truncation of the file by
        // someone else is excluded by the type's contract.)
        unsafe { std::slice::from_raw_parts(self.ptr.as_ptr(), self.len) }
    }

    /// Length in bytes (the file's size when it was mapped).
    #[must_use]
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the file was empty.
    #[must_use]
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Whether the kernel accepted `MADV_HUGEPAGE` (it maps huge pages only
    /// where the page cache holds them and the addresses line up).
    #[must_use]
    pub fn huge_pages(&self) -> bool {
        self.huge_pages
    }

    /// Whether the kernel accepted `MADV_SEQUENTIAL`.
    #[must_use]
    pub fn sequential(&self) -> bool {
        self.sequential
    }
}

impl Drop for FileMap {
    fn drop(&mut self) {
        if self.len > 0 {
            // SAFETY: exactly the mapping made in `open`, unmapped once; the
            // slices it lent borrowed `self`, so none is alive.
            unsafe { libc::munmap(self.ptr.as_ptr().cast(), self.len) };
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::fs::{self, OpenOptions};
    use std::os::fd::AsFd;
    use std::os::unix::fs::FileExt;
    use std::path::PathBuf;

    /// A file of `len` zero bytes in the temporary directory, unique to
    /// this process and test, removed on drop.
    struct TempFile(PathBuf);

    impl TempFile {
        fn new(name: &str, len: u64) -> Self {
            let path =
                std::env::temp_dir().join(format!("hftnet-sys-{}-{name}", std::process::id()));
            let f = fs::File::create(&path).unwrap();
            f.set_len(len).unwrap();
            Self(path)
        }

        /// Whether this process maps the file (`/proc/self/maps`).
        fn mapped(&self) -> bool {
            let maps = fs::read_to_string("/proc/self/maps").unwrap();
            maps.lines().any(|l| l.ends_with(self.0.to_str().unwrap()))
        }
    }

    impl Drop for TempFile {
        fn drop(&mut self) {
            let _ = fs::remove_file(&self.0);
        }
    }

    #[test]
    fn anonymous_mapping_is_zeroed_and_writable() {
        for populate in [false, true] {
            let len = 3 * 4096 + 1;
            let m = Mapping::anonymous(len, populate).unwrap();
            assert_eq!((m.len(), m.is_empty()), (len, false));
            assert_eq!(m.as_ptr() as usize % 4096, 0, "page aligned");
            assert_eq!(m.as_non_null().as_ptr(), m.as_ptr());
            // SAFETY: the mapping is ours alone, `len` bytes long, and no
            // other reference to it exists while the slice lives.
            let bytes = unsafe { std::slice::from_raw_parts_mut(m.as_ptr(), m.len()) };
            assert!(bytes.iter().all(|&b| b == 0));
            for (i, b) in bytes.iter_mut().enumerate() {
                *b = i as u8;
            }
            assert_eq!(bytes[len - 1], (len - 1) as u8);
            assert_eq!(bytes[4096], 0);
        }
    }

    #[test]
    fn errors_name_the_call() {
        let e = Mapping::anonymous(0, false).unwrap_err();
        assert_eq!(
            (e.call, e.errno()),
            ("mmap(MAP_ANONYMOUS)", Some(libc::EINVAL))
        );
        // A shared read-write mapping needs a descriptor open for writing.
        let t = TempFile::new("mmap-ro", 4096);
        let ro = fs::File::open(&t.0).unwrap();
        let e = Mapping::shared_fd(ro.as_fd(), 4096).unwrap_err();
        assert_eq!(
            (e.call, e.errno()),
            ("mmap(MAP_SHARED)", Some(libc::EACCES))
        );
        // A socket cannot be mapped this way.
        let s = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        let e = Mapping::shared_fd(s.as_fd(), 4096).unwrap_err();
        assert_eq!(e.call, "mmap(MAP_SHARED)");
        assert_eq!(e.errno(), Some(libc::ENODEV));
    }

    #[test]
    fn shared_mappings_of_one_file_see_each_other_and_unmap_on_drop() {
        let t = TempFile::new("mmap-shared", 8192);
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .open(&t.0)
            .unwrap();
        let a = Mapping::shared_fd(f.as_fd(), 8192).unwrap();
        let b = Mapping::shared_fd(f.as_fd(), 8192).unwrap();
        drop(f); // the mappings outlive the descriptor
        assert_ne!(a.as_ptr(), b.as_ptr(), "two mappings, one file");
        assert!(t.mapped());
        // SAFETY: offsets 100 and 5000 are inside both 8192-byte mappings;
        // this test is their only user and accesses them one at a time.
        unsafe {
            a.as_ptr().add(100).write_volatile(0xab);
            assert_eq!(b.as_ptr().add(100).read_volatile(), 0xab);
            b.as_ptr().add(5000).write_volatile(0xcd);
            assert_eq!(a.as_ptr().add(5000).read_volatile(), 0xcd);
        }
        // The stores reached the file, and the file's changes reach us.
        let on_disk = fs::read(&t.0).unwrap();
        assert_eq!((on_disk[100], on_disk[5000], on_disk[101]), (0xab, 0xcd, 0));
        let w = OpenOptions::new().write(true).open(&t.0).unwrap();
        w.write_all_at(&[0x5a], 8191).unwrap();
        // SAFETY: offset 8191 is the last byte of the mapping.
        assert_eq!(unsafe { a.as_ptr().add(8191).read_volatile() }, 0x5a);
        drop(a);
        assert!(t.mapped(), "b still maps the file");
        drop(b);
        assert!(!t.mapped(), "unmapped on drop");
    }

    #[test]
    fn file_maps_read_the_file_in_place_and_unmap_on_drop() {
        let t = TempFile::new("filemap", 0);
        let data: Vec<u8> = (0..3 * 4096 + 17).map(|i| (i * 7) as u8).collect();
        fs::write(&t.0, &data).unwrap();
        for advice in [
            FileAdvice::default(),
            FileAdvice {
                sequential: true,
                huge_pages: true,
                populate: true,
            },
        ] {
            let f = fs::File::open(&t.0).unwrap();
            let m = FileMap::open(&f, advice).unwrap();
            drop(f);
            assert_eq!(m.as_slice(), &data[..]);
            assert_eq!((m.len(), m.is_empty()), (data.len(), false));
            assert_eq!(
                m.sequential(),
                advice.sequential,
                "MADV_SEQUENTIAL is always taken"
            );
            assert!(t.mapped());
            drop(m);
            assert!(!t.mapped(), "unmapped on drop");
        }
        // An empty file: an empty map, no mapping.
        fs::write(&t.0, b"").unwrap();
        let m = FileMap::open(&fs::File::open(&t.0).unwrap(), FileAdvice::default()).unwrap();
        assert!(m.is_empty() && m.as_slice().is_empty());
    }

    /// Resident kilobytes of the mapping that starts at `addr`
    /// (`/proc/self/smaps`).
    fn rss_kb(addr: *const u8) -> u64 {
        let smaps = fs::read_to_string("/proc/self/smaps").unwrap();
        let head = format!("{:x}-", addr as usize);
        let mut lines = smaps.lines().skip_while(|l| !l.starts_with(&head));
        lines.next().expect("the mapping is listed");
        lines
            .find_map(|l| l.strip_prefix("Rss:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap()
    }

    #[test]
    fn populate_maps_the_pages_of_a_range_and_clamps_it() {
        let t = TempFile::new("filemap-populate", 0);
        let data: Vec<u8> = (0..64 * 4096).map(|i| (i * 13) as u8).collect();
        fs::write(&t.0, &data).unwrap();
        let m = FileMap::open(&fs::File::open(&t.0).unwrap(), FileAdvice::default()).unwrap();
        assert_eq!(rss_kb(m.as_ptr_for_tests()), 0, "nothing mapped yet");
        // A range inside one page, not aligned: its page is mapped (the
        // kernel may map neighbours too, as on a fault).
        if !m.populate(5000..5001) {
            eprintln!("MADV_POPULATE_READ refused (kernel before 5.14): nothing to check");
            return;
        }
        assert!(rss_kb(m.as_ptr_for_tests()) >= 4);
        // Clamped to the file: past the end, empty and reversed ranges.
        assert!(m.populate(0..usize::MAX));
        assert_eq!(rss_kb(m.as_ptr_for_tests()), 64 * 4);
        assert!(m.populate(70 * 4096..80 * 4096));
        #[allow(clippy::reversed_empty_ranges)]
        let reversed = 9..3;
        assert!(m.populate(reversed));
        assert_eq!(m.as_slice(), &data[..]);
    }

    #[test]
    fn file_map_refuses_what_is_not_a_file() {
        let dir = fs::File::open(std::env::temp_dir()).unwrap();
        let e = FileMap::open(&dir, FileAdvice::default()).unwrap_err();
        assert_eq!((e.call, e.errno()), ("mmap(file)", Some(libc::ENODEV)));
        let (r, _w) = std::io::pipe().unwrap();
        let pipe = fs::File::from(std::os::fd::OwnedFd::from(r));
        let e = FileMap::open(&pipe, FileAdvice::default()).unwrap_err();
        assert_eq!((e.call, e.errno()), ("mmap(file)", Some(libc::ENODEV)));
    }
}
