//! Reading and writing Nasdaq ITCH 5.0 files (plain or gzip): the I/O
//! around the record splitter of `hftnet_wire::itch50::file`.

use std::fs::File;
use std::io::{self, BufWriter, Read, Write};
use std::path::Path;

use anyhow::{Context, Result, bail};
use flate2::Compression;
use flate2::read::MultiGzDecoder;
use flate2::write::GzEncoder;
use hftnet_wire::itch50::file;

/// Reads the records of an ITCH file one at a time, through a 1 MiB buffer.
pub struct ItchReader {
    src: Box<dyn Read>,
    buf: Vec<u8>,
    start: usize,
    end: usize,
    eof: bool,
    /// Bytes of records returned so far (prefixes included).
    pub consumed: u64,
    /// True when the file is gzip-compressed.
    pub gzip: bool,
}

impl ItchReader {
    /// Opens `path`; gzip is recognised by its magic bytes, not the name.
    pub fn open(path: &Path) -> Result<Self> {
        let mut f = File::open(path).with_context(|| format!("opening {}", path.display()))?;
        let mut magic = [0u8; 2];
        let n =
            read_full(&mut f, &mut magic).with_context(|| format!("reading {}", path.display()))?;
        let head = io::Cursor::new(magic[..n].to_vec());
        let gzip = n == 2 && magic == [0x1f, 0x8b];
        let chained = head.chain(f);
        let src: Box<dyn Read> = if gzip {
            Box::new(MultiGzDecoder::new(chained))
        } else {
            Box::new(chained)
        };
        Ok(Self::new(src, gzip))
    }

    /// Reads records from any byte source.
    pub fn new(src: Box<dyn Read>, gzip: bool) -> Self {
        Self {
            src,
            buf: vec![0; 1 << 20],
            start: 0,
            end: 0,
            eof: false,
            consumed: 0,
            gzip,
        }
    }

    /// The next message (without its length prefix), `None` at the end.
    ///
    /// # Errors
    /// An I/O error, a zero-length record, or a file that ends inside a
    /// record (named with its offset).
    pub fn next_record(&mut self) -> Result<Option<&[u8]>> {
        loop {
            match file::next_record(&self.buf[self.start..self.end]) {
                Ok(Some((_, used))) => {
                    let at = self.start;
                    self.start += used;
                    self.consumed += used as u64;
                    let msg = &self.buf[at + file::LEN_PREFIX..at + used];
                    return Ok(Some(msg));
                }
                Ok(None) => {}
                Err(e) => bail!(
                    "bad ITCH record at byte {} of the (uncompressed) file: {e}",
                    self.consumed
                ),
            }
            if self.eof {
                if self.start == self.end {
                    return Ok(None);
                }
                bail!(
                    "the file ends inside a record at byte {} ({} bytes left over): truncated download?",
                    self.consumed,
                    self.end - self.start
                );
            }
            // Keep the partial record, read more behind it.
            self.buf.copy_within(self.start..self.end, 0);
            self.end -= self.start;
            self.start = 0;
            let n = loop {
                match self.src.read(&mut self.buf[self.end..]) {
                    Ok(n) => break n,
                    Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                    Err(e) => return Err(e).context("reading the ITCH file"),
                }
            };
            if n == 0 {
                self.eof = true;
            }
            self.end += n;
        }
    }
}

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

/// Where an [`ItchWriter`] writes.
enum Sink {
    Plain(BufWriter<File>),
    Gzip(GzEncoder<BufWriter<File>>),
}

/// Writes records to an ITCH file; gzip when the name ends in `.gz`.
pub struct ItchWriter {
    out: Sink,
    scratch: Vec<u8>,
    /// Records written.
    pub records: u64,
}

impl ItchWriter {
    /// Creates (or truncates) `path`.
    pub fn create(path: &Path) -> Result<Self> {
        let f = File::create(path).with_context(|| format!("creating {}", path.display()))?;
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

    /// Appends one message.
    pub fn write(&mut self, msg: &[u8]) -> Result<()> {
        let n = file::write_record(msg, &mut self.scratch)
            .map_err(|e| anyhow::anyhow!("cannot write a record of {} bytes: {e}", msg.len()))?;
        let rec = &self.scratch[..n];
        match &mut self.out {
            Sink::Plain(w) => w.write_all(rec),
            Sink::Gzip(w) => w.write_all(rec),
        }
        .context("writing the ITCH file")?;
        self.records += 1;
        Ok(())
    }

    /// Finishes the file: the gzip trailer, the buffer, and a sync to disk,
    /// every error reported (a full disk must not leave a silently cut file).
    pub fn finish(self) -> Result<()> {
        let w = match self.out {
            Sink::Plain(w) => w,
            Sink::Gzip(gz) => gz.finish().context("finishing the gzip stream")?,
        };
        let f = w
            .into_inner()
            .map_err(|e| e.into_error())
            .context("writing the ITCH file")?;
        f.sync_all().context("syncing the ITCH file")?;
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
    }

    #[test]
    fn gzip_round_trip() {
        let dir = std::env::temp_dir().join(format!("hftnet-itch-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        for name in ["day.itch", "day.itch.gz"] {
            let p = dir.join(name);
            let mut w = ItchWriter::create(&p).unwrap();
            for i in 0..1000u16 {
                w.write(&i.to_be_bytes()).unwrap();
            }
            w.finish().unwrap();
            let mut r = ItchReader::open(&p).unwrap();
            assert_eq!(r.gzip, name.ends_with(".gz"));
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
