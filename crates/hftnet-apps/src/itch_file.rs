//! Reading and writing Nasdaq ITCH 5.0 files, plain or gzip: the I/O around
//! the record splitter of `hftnet_wire::itch50::file`.
//!
//! Layer: apps (file I/O around a wire codec). Invariants: a plain file is
//! memory-mapped (sequential advice, huge pages where the kernel offers
//! them) and its records are read in place; a gzip file, or what cannot be
//! mapped (a pipe), streams through one 1 MiB buffer. Either way records are
//! borrowed from the mapping or the buffer, so reading never allocates per
//! record; a file that ends inside a record or holds a bad
//! record is an error naming the byte offset, never a silently short day;
//! the writer reports every error of the final flush and sync, so a full
//! disk cannot leave a silently cut file.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use hftnet_sys::mmap::{FileAdvice, FileMap};
use hftnet_wire::itch50::file;

/// Size of the reader's buffer; records are at most 65 537 bytes.
const READ_BUFFER: usize = 1 << 20;

/// Why an ITCH file could not be opened or read.
#[derive(Debug, thiserror::Error)]
pub enum ItchReadError {
    /// The file could not be opened or its first bytes read.
    #[error("opening {}", path.display())]
    Open {
        /// The file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: io::Error,
    },
    /// Reading failed part way.
    #[error("reading the ITCH file")]
    Read(#[source] io::Error),
    /// A record the splitter refuses (a zero length).
    #[error("bad ITCH record at byte {offset} of the (uncompressed) file: {reason}")]
    BadRecord {
        /// Offset of the record in the uncompressed file.
        offset: u64,
        /// What is wrong with it.
        reason: hftnet_wire::Error,
    },
    /// The file ends inside a record.
    #[error(
        "the file ends inside a record at byte {offset} ({left} bytes left over): truncated download?"
    )]
    Truncated {
        /// Offset of the cut record in the uncompressed file.
        offset: u64,
        /// Bytes of it present.
        left: usize,
    },
}

/// Where an [`ItchReader`]'s bytes come from.
enum Source {
    /// A plain file, mapped: `at` is the offset of the next record. Shared
    /// with the [`Prefault`] handles given out.
    Mapped { map: Arc<FileMap>, at: usize },
    /// A stream (gzip, a pipe) read through `buf`: `buf[start..end]` is
    /// unread.
    Stream {
        src: Box<dyn Read>,
        buf: Vec<u8>,
        start: usize,
        end: usize,
        eof: bool,
    },
}

/// The unread bytes of a mapped ITCH file, whose pages it maps ahead of
/// reading ([`ItchReader::prefault`]): cheaper than faulting them in one
/// by one as they are read (one pass in the kernel), and from another
/// thread than the reader's if asked there.
#[derive(Debug, Clone)]
pub struct Prefault {
    map: Arc<FileMap>,
    unread: std::ops::Range<usize>,
}

impl Prefault {
    /// The unread bytes, as offsets in the file.
    #[must_use]
    pub fn unread(&self) -> std::ops::Range<usize> {
        self.unread.clone()
    }

    /// Maps the pages of bytes `range` (offsets in the file, clamped to
    /// the unread ones) now (`FileMap::populate`); false when the kernel
    /// refused (before 5.14), which changes nothing but that they are
    /// faulted in when read.
    pub fn populate(&self, range: std::ops::Range<usize>) -> bool {
        let start = range.start.max(self.unread.start);
        let end = range.end.min(self.unread.end);
        self.map.populate(start..end)
    }
}

/// Reads the records of an ITCH file: in place from a mapping for a plain
/// file, through a 1 MiB buffer for a gzip file or a stream.
pub struct ItchReader {
    src: Source,
    consumed: u64,
    gzip: bool,
}

impl std::fmt::Debug for ItchReader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ItchReader")
            .field("consumed", &self.consumed)
            .field("gzip", &self.gzip)
            .field("mapped", &self.is_mapped())
            .finish_non_exhaustive()
    }
}

/// The advice a mapped ITCH file gets: read once front to back, huge pages
/// where the kernel offers them for the page cache, every page mapped up
/// front (one pass in the kernel instead of a fault per 64 KiB read).
const MAP_ADVICE: FileAdvice = FileAdvice {
    sequential: true,
    huge_pages: true,
    populate: true,
};

impl ItchReader {
    /// Opens `path`; gzip is recognised by its magic bytes, not the name. A
    /// plain regular file is memory-mapped; a gzip file, or anything that
    /// cannot be mapped (a pipe, a device), is read as a stream.
    ///
    /// # Errors
    /// [`ItchReadError::Open`] when the file cannot be opened or read.
    pub fn open(path: &Path) -> Result<Self, ItchReadError> {
        Self::open_with(path, true)
    }

    /// [`ItchReader::open`], with `map` false: always read through the
    /// buffer, never mapped (to compare the two, or for a file that may
    /// change while read).
    ///
    /// # Errors
    /// [`ItchReadError::Open`] when the file cannot be opened or read.
    pub fn open_with(path: &Path, map: bool) -> Result<Self, ItchReadError> {
        Self::open_mapped(path, map, true)
    }

    /// [`ItchReader::open_with`] `map` true, but a mapped file's pages are
    /// not all mapped at open: they are faulted in as they are read, or
    /// mapped ahead by the handle [`ItchReader::prefault`] gives (from
    /// another thread, e.g. one idle while this one starts reading).
    ///
    /// # Errors
    /// [`ItchReadError::Open`] when the file cannot be opened or read.
    pub fn open_unpopulated(path: &Path) -> Result<Self, ItchReadError> {
        Self::open_mapped(path, true, false)
    }

    fn open_mapped(path: &Path, map: bool, populate: bool) -> Result<Self, ItchReadError> {
        let open_err = |source| ItchReadError::Open {
            path: path.to_path_buf(),
            source,
        };
        let f = File::open(path).map_err(open_err)?;
        // A gzip file's mapping is dropped here: the descriptor (still at
        // offset 0) streams through the decoder.
        if map
            && let Ok(m) = FileMap::open(
                &f,
                FileAdvice {
                    populate,
                    ..MAP_ADVICE
                },
            )
            && !m.as_slice().starts_with(&GZIP_MAGIC)
        {
            return Ok(Self {
                src: Source::Mapped {
                    map: Arc::new(m),
                    at: 0,
                },
                consumed: 0,
                gzip: false,
            });
        }
        Self::from_reader(f).map_err(open_err)
    }

    /// Reads the records of a file's bytes from `src`, plain or gzip (told by
    /// the magic bytes), as a stream: what [`ItchReader::open`] does with a
    /// file it does not map.
    ///
    /// # Errors
    /// When reading the first two bytes fails.
    pub fn from_reader(mut src: impl Read + 'static) -> io::Result<Self> {
        let mut magic = [0u8; 2];
        let n = read_full(&mut src, &mut magic)?;
        let head = io::Cursor::new(magic[..n].to_vec());
        let gzip = magic[..n] == GZIP_MAGIC;
        let chained = head.chain(src);
        let src: Box<dyn Read> = if gzip {
            Box::new(MultiGzDecoder::new(chained))
        } else {
            Box::new(chained)
        };
        Ok(Self::new(src, gzip))
    }

    /// Reads records from any byte source (`gzip` is only reported).
    #[must_use]
    pub fn new(src: Box<dyn Read>, gzip: bool) -> Self {
        Self {
            src: Source::Stream {
                src,
                buf: vec![0; READ_BUFFER],
                start: 0,
                end: 0,
                eof: false,
            },
            consumed: 0,
            gzip,
        }
    }

    /// Bytes of records returned so far (length prefixes included).
    #[must_use]
    pub fn consumed(&self) -> u64 {
        self.consumed
    }

    /// True when the file is gzip-compressed.
    #[must_use]
    pub fn is_gzip(&self) -> bool {
        self.gzip
    }

    /// True when the file is read in place from a memory mapping.
    #[must_use]
    pub fn is_mapped(&self) -> bool {
        matches!(self.src, Source::Mapped { .. })
    }

    /// For a mapped file, a handle that maps the pages of its unread bytes
    /// ahead of reading, from any thread ([`Prefault::populate`]); `None`
    /// for a stream.
    #[must_use]
    pub fn prefault(&self) -> Option<Prefault> {
        match &self.src {
            Source::Mapped { map, at } => Some(Prefault {
                map: Arc::clone(map),
                unread: *at..map.len(),
            }),
            Source::Stream { .. } => None,
        }
    }

    /// Whether the kernel took the huge-page advice for the mapping (false
    /// when not mapped).
    #[must_use]
    pub fn huge_pages(&self) -> bool {
        matches!(&self.src, Source::Mapped { map, .. } if map.huge_pages())
    }

    /// The unread bytes, records in file framing: at least one whole record
    /// (or an invalid one), unless the file ends — then what is left, which
    /// is empty or a cut record. Reads more from a stream when fewer than
    /// one whole record is buffered; a mapping returns the rest of the file.
    /// Hand what was used to [`ItchReader::consume`].
    ///
    /// # Errors
    /// [`ItchReadError::Read`].
    pub fn fill(&mut self) -> Result<&[u8], ItchReadError> {
        self.fill_inner()?;
        Ok(self.unread())
    }

    /// Marks the first `n` bytes of [`ItchReader::fill`]'s slice as used
    /// (they count in [`ItchReader::consumed`]).
    ///
    /// # Panics
    /// When `n` exceeds the unread bytes.
    pub fn consume(&mut self, n: usize) {
        assert!(n <= self.unread().len(), "consume past the unread bytes");
        match &mut self.src {
            Source::Mapped { at, .. } => *at += n,
            Source::Stream { start, .. } => *start += n,
        }
        self.consumed += n as u64;
    }

    fn unread(&self) -> &[u8] {
        match &self.src {
            Source::Mapped { map, at } => &map.as_slice()[*at..],
            Source::Stream {
                buf, start, end, ..
            } => &buf[*start..*end],
        }
    }

    /// Makes sure a whole record is unread, unless at the end of the file.
    fn fill_inner(&mut self) -> Result<(), ItchReadError> {
        let Source::Stream {
            src,
            buf,
            start,
            end,
            eof,
        } = &mut self.src
        else {
            return Ok(());
        };
        loop {
            if !matches!(file::next_record(&buf[*start..*end]), Ok(None)) || *eof {
                return Ok(());
            }
            // Keep the partial record, read more behind it.
            buf.copy_within(*start..*end, 0);
            *end -= *start;
            *start = 0;
            let n = loop {
                match src.read(&mut buf[*end..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(ItchReadError::Read(e)),
                }
            };
            if n == 0 {
                *eof = true;
            }
            *end += n;
        }
    }

    /// The next message (without its length prefix), `None` at the end.
    ///
    /// # Errors
    /// [`ItchReadError::Read`], [`ItchReadError::BadRecord`] or
    /// [`ItchReadError::Truncated`], with the offset.
    pub fn next_record(&mut self) -> Result<Option<&[u8]>, ItchReadError> {
        self.fill_inner()?;
        let rest = self.unread();
        match file::next_record(rest) {
            Ok(Some((_, used))) => {
                self.consume(used);
                let rest = self.unread();
                // `rest` now starts `used` bytes later: step back over the
                // record just consumed, in the same backing slice.
                Ok(Some(self.record_before(rest.len(), used)))
            }
            Ok(None) if rest.is_empty() => Ok(None),
            Ok(None) => Err(ItchReadError::Truncated {
                offset: self.consumed,
                left: rest.len(),
            }),
            Err(reason) => Err(ItchReadError::BadRecord {
                offset: self.consumed,
                reason,
            }),
        }
    }

    /// The message of the `used`-byte record that ends where the last
    /// `unread` bytes begin.
    fn record_before(&self, unread: usize, used: usize) -> &[u8] {
        let backing: &[u8] = match &self.src {
            Source::Mapped { map, .. } => map.as_slice(),
            Source::Stream { buf, end, .. } => &buf[..*end],
        };
        let stop = backing.len() - unread;
        &backing[stop - used + file::LEN_PREFIX..stop]
    }
}

/// The first two bytes of a gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

fn read_full(r: &mut impl Read, buf: &mut [u8]) -> io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..]) {
            Ok(0) => break,
            Ok(k) => n += k,
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
    Ok(n)
}

/// Why an ITCH file could not be written.
#[derive(Debug, thiserror::Error)]
pub enum ItchWriteError {
    /// The file could not be created.
    #[error("creating {}", path.display())]
    Create {
        /// The file.
        path: PathBuf,
        /// What the system said.
        #[source]
        source: io::Error,
    },
    /// A message too long for a record.
    #[error("cannot write a record of {len} bytes: {reason}")]
    Record {
        /// The message length.
        len: usize,
        /// What the codec said.
        reason: hftnet_wire::Error,
    },
    /// Writing failed.
    #[error("writing the ITCH file")]
    Write(#[source] io::Error),
    /// The gzip trailer could not be written.
    #[error("finishing the gzip stream")]
    Gzip(#[source] io::Error),
    /// The data could not be synced to disk.
    #[error("syncing the ITCH file")]
    Sync(#[source] io::Error),
}

/// Where an [`ItchWriter`] writes.
enum Sink {
    Plain(BufWriter<File>),
    Gzip(GzEncoder<BufWriter<File>>),
}

/// Writes records to an ITCH file; gzip when the name ends in `.gz`.
pub struct ItchWriter {
    out: Sink,
    scratch: Vec<u8>,
    records: u64,
}

impl std::fmt::Debug for ItchWriter {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ItchWriter")
            .field("records", &self.records)
            .finish_non_exhaustive()
    }
}

impl ItchWriter {
    /// Creates (or truncates) `path`.
    ///
    /// # Errors
    /// [`ItchWriteError::Create`].
    pub fn create(path: &Path) -> Result<Self, ItchWriteError> {
        let f = File::create(path).map_err(|source| ItchWriteError::Create {
            path: path.to_path_buf(),
            source,
        })?;
        let w = BufWriter::with_capacity(1 << 20, f);
        let out = if path.extension().is_some_and(|e| e == "gz") {
            Sink::Gzip(GzEncoder::new(w, Compression::fast()))
        } else {
            Sink::Plain(w)
        };
        Ok(Self {
            out,
            scratch: vec![0; file::LEN_PREFIX + file::MAX_MESSAGE_LEN],
            records: 0,
        })
    }

    /// Records written.
    #[must_use]
    pub fn records(&self) -> u64 {
        self.records
    }

    /// Appends one message.
    ///
    /// # Errors
    /// [`ItchWriteError::Record`] or [`ItchWriteError::Write`].
    pub fn write(&mut self, msg: &[u8]) -> Result<(), ItchWriteError> {
        let n = file::write_record(msg, &mut self.scratch).map_err(|reason| {
            ItchWriteError::Record {
                len: msg.len(),
                reason,
            }
        })?;
        let rec = &self.scratch[..n];
        match &mut self.out {
            Sink::Plain(w) => w.write_all(rec),
            Sink::Gzip(w) => w.write_all(rec),
        }
        .map_err(ItchWriteError::Write)?;
        self.records += 1;
        Ok(())
    }

    /// Finishes the file: the gzip trailer, the buffer, and a sync to disk,
    /// every error reported.
    ///
    /// # Errors
    /// [`ItchWriteError::Gzip`], [`ItchWriteError::Write`] or
    /// [`ItchWriteError::Sync`].
    pub fn finish(self) -> Result<(), ItchWriteError> {
        let w = match self.out {
            Sink::Plain(w) => w,
            Sink::Gzip(gz) => gz.finish().map_err(ItchWriteError::Gzip)?,
        };
        let f = w
            .into_inner()
            .map_err(|e| ItchWriteError::Write(e.into_error()))?;
        f.sync_all().map_err(ItchWriteError::Sync)?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reader(bytes: Vec<u8>) -> ItchReader {
        ItchReader::new(Box::new(io::Cursor::new(bytes)), false)
    }

    #[test]
    fn reads_records_across_buffer_refills() {
        let mut bytes = Vec::new();
        for i in 0..300_000u32 {
            let msg = i.to_be_bytes();
            bytes.extend_from_slice(&4u16.to_be_bytes());
            bytes.extend_from_slice(&msg);
        }
        let mut r = reader(bytes);
        let mut i = 0u32;
        while let Some(m) = r.next_record().unwrap() {
            assert_eq!(m, i.to_be_bytes());
            i += 1;
        }
        assert_eq!(i, 300_000);
        assert_eq!(r.consumed(), 300_000 * 6);
    }

    /// A file opened without mapping its pages reads the same; its
    /// prefault handle covers the unread bytes (from wherever the reader
    /// is) and maps them from another thread; a stream has none.
    #[test]
    fn an_unpopulated_file_reads_the_same_and_prefaults_from_another_thread() {
        let path =
            std::env::temp_dir().join(format!("hftnet-prefault-{}.itch", std::process::id()));
        let mut bytes = Vec::new();
        for i in 0..50_000u32 {
            bytes.extend_from_slice(&4u16.to_be_bytes());
            bytes.extend_from_slice(&i.to_be_bytes());
        }
        std::fs::write(&path, &bytes).unwrap();
        let mut r = ItchReader::open_unpopulated(&path).unwrap();
        std::fs::remove_file(&path).unwrap();
        assert!(r.is_mapped());
        let p = r.prefault().unwrap();
        assert_eq!(p.unread(), 0..bytes.len());
        assert_eq!(r.next_record().unwrap().unwrap(), 0u32.to_be_bytes());
        let later = r.prefault().unwrap();
        assert_eq!(later.unread(), 6..bytes.len());
        let len = bytes.len();
        let populated = std::thread::spawn(move || p.populate(len / 2..usize::MAX))
            .join()
            .unwrap();
        if !populated {
            eprintln!("MADV_POPULATE_READ refused (a kernel before 5.14): pages fault in as read");
        }
        let mut i = 1u32;
        while let Some(m) = r.next_record().unwrap() {
            assert_eq!(m, i.to_be_bytes());
            i += 1;
        }
        assert_eq!(i, 50_000);
        assert!(reader(vec![0, 1, b'S']).prefault().is_none());
    }

    #[test]
    fn truncated_and_bad_files_are_named() {
        let mut r = reader(vec![0, 5, b'S', 1]);
        let e = r.next_record().unwrap_err().to_string();
        assert!(e.contains("ends inside a record"), "{e}");
        let mut r = reader(vec![0, 1, b'S', 0, 0]);
        assert_eq!(r.next_record().unwrap().unwrap(), b"S");
        let e = r.next_record().unwrap_err().to_string();
        assert!(e.contains("bad ITCH record at byte 3"), "{e}");
        assert!(reader(Vec::new()).next_record().unwrap().is_none());
        let e = ItchReader::open(Path::new("/nonexistent/day.itch")).unwrap_err();
        assert!(matches!(e, ItchReadError::Open { .. }));
        let text = crate::error_chain(&e);
        assert!(
            text.starts_with("opening /nonexistent/day.itch: ") && text.contains("No such file"),
            "{text}"
        );
    }

    #[test]
    fn gzip_round_trip() {
        let dir = std::env::temp_dir().join(format!("hftnet-apps-itch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["day.itch", "day.itch.gz"] {
            let p = dir.join(name);
            let mut w = ItchWriter::create(&p).unwrap();
            for i in 0..1000u16 {
                w.write(&i.to_be_bytes()).unwrap();
            }
            assert_eq!(w.records(), 1000);
            w.finish().unwrap();
            let mut r = ItchReader::open(&p).unwrap();
            assert_eq!(r.is_gzip(), name.ends_with(".gz"));
            let mut n = 0u16;
            while let Some(m) = r.next_record().unwrap() {
                assert_eq!(m, n.to_be_bytes());
                n += 1;
            }
            assert_eq!(n, 1000);
        }
        std::fs::remove_dir_all(&dir).unwrap();
    }
}
