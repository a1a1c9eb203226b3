//! Streaming writer of a block `index` file.
//!
//! The caller adds every symbol (sorted, unique), then every series (sorted
//! by label set) with its chunk metas, then closes. The file is written
//! strictly front to back, in the layout Prometheus 2.x produces:
//!
//! ```text
//! header | symbols | series... | label indices... | postings... |
//! label offset table | postings offset table | TOC
//! ```
//!
//! What the writer holds in memory:
//! - every symbol string (needed to map label strings to symbol numbers while
//!   series arrive, and back to strings for the postings offset table; the
//!   same bound as Prometheus' symbol cache);
//! - per label name, how many series use it;
//! - at close, per distinct label pair, two symbol numbers and an offset
//!   (16 bytes), and the postings of one batch of label names whose total
//!   number of postings is at most the number of series (4 bytes each).
//!
//! Series are not held: like Prometheus, `close` re-reads the series section
//! from the file once per batch to build postings. Postings go to a
//! temporary file next to the index (`<index>_tmp_p`) because the label
//! indices, which depend on the same scan, precede them in the file.

use std::collections::HashMap;
use std::fs::{File, OpenOptions};
use std::io::{BufReader, BufWriter, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};

use super::encoding::{CRC_LEN, put_be32, put_uvarint, put_uvarint_str, put_varint, uvarint_len};
use super::{ChunkMeta, FORMAT_V2, MAGIC_INDEX, SERIES_ALIGN, Toc};
use crate::{Error, Labels};

/// Series references are stored as 4-byte postings of `offset / 16`.
const MAX_FILE_LEN: u64 = SERIES_ALIGN * u32::MAX as u64;
// Large enough for sequential I/O, small enough that the many small indexes
// of tests and fuzzing do not pay for megabyte buffers.
const BUF_SIZE: usize = 1 << 16;

#[derive(Clone, Copy, PartialEq, Eq, Debug)]
enum Stage {
    Symbols,
    Series,
}

/// Writes one block index file; see the module documentation for the order
/// of calls and what is kept in memory.
pub struct IndexWriter {
    path: PathBuf,
    out: Out,
    stage: Stage,
    toc: Toc,
    symbols: Vec<Box<str>>,
    /// Symbol number of a label name → number of series carrying it.
    name_uses: HashMap<u32, u64>,
    last_series: Option<Labels>,
    last_chunk_ref: u64,
    num_series: u64,
    buf: Vec<u8>,
}

/// A buffered file that knows its write position.
struct Out {
    path: PathBuf,
    w: BufWriter<File>,
    pos: u64,
}

impl Out {
    fn create(path: &Path) -> Result<Out, Error> {
        let f = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(true)
            .open(path)
            .map_err(|e| Error::io("create", path, e))?;
        Ok(Out {
            path: path.to_path_buf(),
            w: BufWriter::with_capacity(BUF_SIZE, f),
            pos: 0,
        })
    }

    fn write(&mut self, b: &[u8]) -> Result<(), Error> {
        self.w
            .write_all(b)
            .map_err(|e| Error::io("write", &self.path, e))?;
        self.pos += b.len() as u64;
        if self.pos > MAX_FILE_LEN {
            return Err(Error::InvalidIndexWrite(format!(
                "{} would exceed the format's limit of {MAX_FILE_LEN} bytes",
                self.path.display()
            )));
        }
        Ok(())
    }

    fn pad_to(&mut self, align: u64) -> Result<(), Error> {
        let r = self.pos % align;
        if r != 0 {
            self.write(&[0u8; SERIES_ALIGN as usize][..(align - r) as usize])?;
        }
        Ok(())
    }

    fn flush(&mut self) -> Result<(), Error> {
        self.w
            .flush()
            .map_err(|e| Error::io("write", &self.path, e))
    }
}

fn crc_trailer(content: &[u8]) -> [u8; 4] {
    crc32c::crc32c(content).to_be_bytes()
}

impl IndexWriter {
    /// Creates (or truncates) the index file at `path` and writes its header.
    pub fn create(path: &Path) -> Result<IndexWriter, Error> {
        let mut out = Out::create(path)?;
        let mut header = MAGIC_INDEX.to_be_bytes().to_vec();
        header.push(FORMAT_V2);
        out.write(&header)?;
        let toc = Toc {
            symbols: out.pos,
            ..Toc::default()
        };
        Ok(IndexWriter {
            path: path.to_path_buf(),
            out,
            stage: Stage::Symbols,
            toc,
            symbols: Vec::new(),
            name_uses: HashMap::new(),
            last_series: None,
            last_chunk_ref: 0,
            num_series: 0,
            buf: Vec::new(),
        })
    }

    /// Adds the next symbol. Symbols must be strictly increasing (byte-wise)
    /// and all added before the first series; every label name and value of
    /// every series must be among them.
    pub fn add_symbol(&mut self, s: &str) -> Result<(), Error> {
        if self.stage != Stage::Symbols {
            return Err(Error::InvalidIndexWrite(format!(
                "symbol {s:?} added after the first series"
            )));
        }
        if let Some(last) = self.symbols.last()
            && s <= &**last
        {
            return Err(Error::InvalidIndexWrite(format!(
                "symbol {s:?} out of order: not after {last:?}"
            )));
        }
        self.symbols.push(s.into());
        Ok(())
    }

    fn finish_symbols(&mut self) -> Result<(), Error> {
        // Written in one piece now that the count is known, so the section
        // needs no back-patching.
        let body: usize = self
            .symbols
            .iter()
            .map(|s| uvarint_len(s.len() as u64) + s.len())
            .sum();
        let len = 4 + body;
        let (Ok(len32), Ok(count)) = (u32::try_from(len), u32::try_from(self.symbols.len())) else {
            return Err(Error::InvalidIndexWrite(format!(
                "symbol table of {len} bytes exceeds the format's 4 GiB limit"
            )));
        };
        self.out.write(&len32.to_be_bytes())?;
        let mut crc = crc32c::crc32c(&count.to_be_bytes());
        self.out.write(&count.to_be_bytes())?;
        let mut b = Vec::new();
        for s in &self.symbols {
            b.clear();
            put_uvarint_str(&mut b, s);
            crc = crc32c::crc32c_append(crc, &b);
            self.out.write(&b)?;
        }
        self.out.write(&crc.to_be_bytes())?;
        self.toc.series = self.out.pos;
        self.stage = Stage::Series;
        Ok(())
    }

    fn symbol_ref(&self, s: &str) -> Result<u32, Error> {
        self.symbols
            .binary_search_by(|x| (**x).cmp(s))
            .map(|i| i as u32)
            .map_err(|_| Error::InvalidIndexWrite(format!("symbol {s:?} was not added")))
    }

    /// Adds the next series. Label sets must be non-empty and strictly
    /// increasing in `Labels` order; chunks must be sorted by time, not
    /// overlap (`min_time` above the previous `max_time`), have
    /// `min_time <= max_time`, and chunk references must not decrease within
    /// the series nor across series.
    pub fn add_series(&mut self, labels: &Labels, chunks: &[ChunkMeta]) -> Result<(), Error> {
        if self.stage == Stage::Symbols {
            self.finish_symbols()?;
        }
        if labels.is_empty() {
            return Err(Error::InvalidIndexWrite(
                "series with an empty label set".into(),
            ));
        }
        if let Some(last) = &self.last_series
            && labels <= last
        {
            return Err(Error::InvalidIndexWrite(format!(
                "series {labels} out of order: not after {last}"
            )));
        }
        let mut last_ref = self.last_chunk_ref;
        for (i, c) in chunks.iter().enumerate() {
            if c.chunk_ref < last_ref {
                return Err(Error::InvalidIndexWrite(format!(
                    "series {labels}: chunk reference {} below the previous {last_ref}",
                    c.chunk_ref
                )));
            }
            last_ref = c.chunk_ref;
            if i > 0 && c.min_time <= chunks[i - 1].max_time {
                return Err(Error::InvalidIndexWrite(format!(
                    "series {labels}: chunk min time {} not after the previous chunk's max time {}",
                    c.min_time,
                    chunks[i - 1].max_time
                )));
            }
            if c.max_time < c.min_time {
                return Err(Error::InvalidIndexWrite(format!(
                    "series {labels}: chunk max time {} below its min time {}",
                    c.max_time, c.min_time
                )));
            }
        }

        self.out.pad_to(SERIES_ALIGN)?;
        if self.out.pos / SERIES_ALIGN > u64::from(u32::MAX) {
            return Err(Error::InvalidIndexWrite(format!(
                "series {labels} would start at byte {}, beyond what 4-byte references address",
                self.out.pos
            )));
        }

        let mut b = std::mem::take(&mut self.buf);
        b.clear();
        put_uvarint(&mut b, labels.len() as u64);
        for l in labels.iter() {
            let name = self.symbol_ref(&l.name)?;
            let value = self.symbol_ref(&l.value)?;
            *self.name_uses.entry(name).or_default() += 1;
            put_uvarint(&mut b, name.into());
            put_uvarint(&mut b, value.into());
        }
        put_uvarint(&mut b, chunks.len() as u64);
        if let Some((first, rest)) = chunks.split_first() {
            // Deltas as Prometheus computes them, in wrapping two's complement
            // so extreme timestamps encode like Go's int64 arithmetic.
            put_varint(&mut b, first.min_time);
            put_uvarint(&mut b, first.max_time.wrapping_sub(first.min_time) as u64);
            put_uvarint(&mut b, first.chunk_ref);
            let mut t0 = first.max_time;
            let mut ref0 = first.chunk_ref as i64;
            for c in rest {
                put_uvarint(&mut b, c.min_time.wrapping_sub(t0) as u64);
                put_uvarint(&mut b, c.max_time.wrapping_sub(c.min_time) as u64);
                put_varint(&mut b, (c.chunk_ref as i64).wrapping_sub(ref0));
                t0 = c.max_time;
                ref0 = c.chunk_ref as i64;
            }
        }
        let mut head = Vec::with_capacity(5);
        put_uvarint(&mut head, b.len() as u64);
        self.out.write(&head)?;
        self.out.write(&b)?;
        self.out.write(&crc_trailer(&b))?;
        self.buf = b;

        self.last_series = Some(labels.clone());
        self.last_chunk_ref = last_ref;
        self.num_series += 1;
        Ok(())
    }

    /// Writes postings, label indices, both offset tables and the TOC, then
    /// fsyncs the file (and its directory, so the new name is durable).
    pub fn close(mut self) -> Result<(), Error> {
        if self.stage == Stage::Symbols {
            self.finish_symbols()?;
        }
        self.out.flush()?;
        self.toc.label_indices = self.out.pos;

        let tmp_path = tmp_postings_path(&self.path);
        let tmp = TmpFile::create(&tmp_path)?;
        let result = self.finish(tmp);
        // The temporary file is gone on success; on failure remove what is
        // left so a failed compaction leaves no stray files next to the block.
        let _ = std::fs::remove_file(&tmp_path);
        result
    }

    fn finish(&mut self, mut tmp: TmpFile) -> Result<(), Error> {
        let pairs = self.write_postings_to_tmp(&mut tmp)?;
        tmp.out.flush()?;

        let label_indices = self.write_label_indices(&pairs)?;

        self.toc.postings = self.out.pos;
        self.out.pad_to(4)?;
        let postings_start = self.out.pos;
        self.copy_tmp(tmp)?;

        self.toc.label_indices_table = self.out.pos;
        self.write_label_offset_table(&label_indices)?;

        self.toc.postings_table = self.out.pos;
        self.write_postings_offset_table(&pairs, postings_start)?;

        let toc = self.toc.encode();
        self.out.write(&toc)?;
        self.out.flush()?;
        self.out
            .w
            .get_ref()
            .sync_all()
            .map_err(|e| Error::io("fsync", &self.path, e))?;
        if let Some(dir) = self.path.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            File::open(dir)
                .and_then(|d| d.sync_all())
                .map_err(|e| Error::io("fsync directory", dir, e))?;
        }
        Ok(())
    }

    /// Calls `f(series_ref, entry_content)` for every series in the file,
    /// reading the series section back sequentially.
    fn scan_series(&self, mut f: impl FnMut(u32, &[u8]) -> Result<(), Error>) -> Result<(), Error> {
        let file = File::open(&self.path).map_err(|e| Error::io("open", &self.path, e))?;
        let mut r = BufReader::with_capacity(BUF_SIZE, file);
        r.seek(SeekFrom::Start(self.toc.series))
            .map_err(|e| Error::io("seek", &self.path, e))?;
        let end = self.toc.label_indices;
        let mut pos = self.toc.series;
        let mut entry = Vec::new();
        let read_err = |e| Error::io("read back", &self.path, e);
        while pos < end {
            let mut byte = [0u8; 1];
            r.read_exact(&mut byte).map_err(read_err)?;
            if byte[0] == 0 {
                // Alignment padding: an entry's length is never 0.
                pos += 1;
                continue;
            }
            let start = pos;
            let mut len = 0u64;
            let mut shift = 0;
            let mut b = byte[0];
            pos += 1;
            loop {
                len |= u64::from(b & 0x7f) << shift;
                if b < 0x80 {
                    break;
                }
                shift += 7;
                if shift > 63 {
                    return Err(Error::corrupt(start, "series length varint overflows"));
                }
                r.read_exact(&mut byte).map_err(read_err)?;
                b = byte[0];
                pos += 1;
            }
            entry.resize(len as usize + CRC_LEN, 0);
            r.read_exact(&mut entry).map_err(read_err)?;
            pos += entry.len() as u64;
            f((start / SERIES_ALIGN) as u32, &entry[..len as usize])?;
        }
        Ok(())
    }

    /// Builds every postings list into `tmp`: first the all-series list
    /// (`"", ""`), then label names in order, values in order. Returns the
    /// label pairs as `(name symbol, value symbol, offset in tmp)`.
    fn write_postings_to_tmp(&self, tmp: &mut TmpFile) -> Result<Vec<(u32, u32, u64)>, Error> {
        let n = u32::try_from(self.num_series).map_err(|_| {
            Error::InvalidIndexWrite("more series than 4-byte postings can count".into())
        })?;
        // The all-series list is streamed: its count is known up front.
        tmp.out.pad_to(4)?;
        let all_len = 4 + 4 * u64::from(n);
        let all_len = u32::try_from(all_len).map_err(|_| {
            Error::InvalidIndexWrite("all-series postings list exceeds 4 GiB".into())
        })?;
        tmp.out.write(&all_len.to_be_bytes())?;
        tmp.out.write(&n.to_be_bytes())?;
        let mut crc = crc32c::crc32c(&n.to_be_bytes());
        self.scan_series(|r, _| {
            crc = crc32c::crc32c_append(crc, &r.to_be_bytes());
            tmp.out.write(&r.to_be_bytes())
        })?;
        tmp.out.write(&crc.to_be_bytes())?;

        // Label names in symbol order, which is string order.
        let mut names: Vec<(u32, u64)> = self.name_uses.iter().map(|(&k, &v)| (k, v)).collect();
        names.sort_unstable();
        let mut pairs = Vec::new();
        let mut rest = &names[..];
        let mut list = Vec::new();
        while !rest.is_empty() {
            // Batch names so that one batch holds at most as many postings
            // as there are series (a name occurs at most once per series).
            let mut total = 0u64;
            let mut k = 0;
            while k < rest.len() && (k == 0 || total + rest[k].1 <= self.num_series) {
                total += rest[k].1;
                k += 1;
            }
            let (batch, tail) = rest.split_at(k);
            rest = tail;

            let mut postings: HashMap<u32, HashMap<u32, Vec<u32>>> = batch
                .iter()
                .map(|&(name, _)| (name, HashMap::new()))
                .collect();
            self.scan_series(|r, entry| {
                let mut c = super::encoding::Cursor::new(entry, 0);
                let nl = c.uvarint("label count")?;
                for _ in 0..nl {
                    let name = c.uvarint32("label name")?;
                    let value = c.uvarint32("label value")?;
                    if let Some(values) = postings.get_mut(&name) {
                        values.entry(value).or_default().push(r);
                    }
                }
                Ok(())
            })?;
            for &(name, _) in batch {
                let Some(values) = postings.remove(&name) else {
                    continue;
                };
                let mut values: Vec<(u32, Vec<u32>)> = values.into_iter().collect();
                values.sort_unstable_by_key(|(v, _)| *v);
                for (value, refs) in values {
                    tmp.out.pad_to(4)?;
                    pairs.push((name, value, tmp.out.pos));
                    list.clear();
                    put_be32(&mut list, refs.len() as u32);
                    for r in refs {
                        put_be32(&mut list, r);
                    }
                    tmp.out.write(&(list.len() as u32).to_be_bytes())?;
                    tmp.out.write(&list)?;
                    tmp.out.write(&crc_trailer(&list))?;
                }
            }
        }
        Ok(pairs)
    }

    /// One label index per label name (the format's optional, no longer
    /// read section, written because Prometheus 2.x still writes it).
    /// Returns `(name symbol, offset)` for the label offset table.
    fn write_label_indices(&mut self, pairs: &[(u32, u32, u64)]) -> Result<Vec<(u32, u64)>, Error> {
        let mut out = Vec::new();
        let mut b = Vec::new();
        for group in pairs.chunk_by(|a, b| a.0 == b.0) {
            self.out.pad_to(4)?;
            out.push((group[0].0, self.out.pos));
            b.clear();
            put_be32(&mut b, 1);
            put_be32(&mut b, group.len() as u32);
            for &(_, value, _) in group {
                put_be32(&mut b, value);
            }
            let len = u32::try_from(b.len())
                .map_err(|_| Error::InvalidIndexWrite("label index exceeds 4 GiB".into()))?;
            self.out.write(&len.to_be_bytes())?;
            self.out.write(&b)?;
            self.out.write(&crc_trailer(&b))?;
        }
        Ok(out)
    }

    fn copy_tmp(&mut self, tmp: TmpFile) -> Result<(), Error> {
        let TmpFile { out, .. } = tmp;
        let expected = out.pos;
        let mut f = out
            .w
            .into_inner()
            .map_err(|e| Error::io("write", &out.path, e.into_error()))?;
        f.seek(SeekFrom::Start(0))
            .map_err(|e| Error::io("seek", &out.path, e))?;
        let mut r = BufReader::with_capacity(BUF_SIZE, f);
        let mut chunk = vec![0u8; BUF_SIZE];
        let mut copied = 0u64;
        loop {
            let n = r
                .read(&mut chunk)
                .map_err(|e| Error::io("read", &out.path, e))?;
            if n == 0 {
                break;
            }
            self.out.write(&chunk[..n])?;
            copied += n as u64;
        }
        if copied != expected {
            return Err(Error::Io {
                op: "read back",
                path: out.path.clone(),
                kind: std::io::ErrorKind::UnexpectedEof,
                message: format!("wrote {expected} bytes of postings, read back {copied}"),
            });
        }
        Ok(())
    }

    fn write_label_offset_table(&mut self, entries: &[(u32, u64)]) -> Result<(), Error> {
        let mut b = Vec::new();
        put_be32(&mut b, entries.len() as u32);
        for &(name, off) in entries {
            put_uvarint(&mut b, 1);
            put_uvarint_str(&mut b, &self.symbols[name as usize]);
            put_uvarint(&mut b, off);
        }
        let len = u32::try_from(b.len())
            .map_err(|_| Error::InvalidIndexWrite("label offset table exceeds 4 GiB".into()))?;
        self.out.write(&len.to_be_bytes())?;
        self.out.write(&b)?;
        self.out.write(&crc_trailer(&b))
    }

    fn write_postings_offset_table(
        &mut self,
        pairs: &[(u32, u32, u64)],
        postings_start: u64,
    ) -> Result<(), Error> {
        // Streamed (the table can be large), so its length is computed first.
        let entry_len = |name: &str, value: &str, off: u64| {
            1 + uvarint_len(name.len() as u64)
                + name.len()
                + uvarint_len(value.len() as u64)
                + value.len()
                + uvarint_len(off)
        };
        let mut len = 4 + entry_len("", "", postings_start) as u64;
        for &(n, v, off) in pairs {
            len += entry_len(
                &self.symbols[n as usize],
                &self.symbols[v as usize],
                off + postings_start,
            ) as u64;
        }
        let len = u32::try_from(len)
            .map_err(|_| Error::InvalidIndexWrite("postings offset table exceeds 4 GiB".into()))?;
        let count = (pairs.len() + 1) as u32;
        self.out.write(&len.to_be_bytes())?;
        self.out.write(&count.to_be_bytes())?;
        let mut crc = crc32c::crc32c(&count.to_be_bytes());
        let mut b = Vec::new();
        let all = std::iter::once(("", "", 0u64));
        let labelled = pairs
            .iter()
            .map(|&(n, v, off)| (&*self.symbols[n as usize], &*self.symbols[v as usize], off));
        for (name, value, off) in all.chain(labelled) {
            b.clear();
            put_uvarint(&mut b, 2);
            put_uvarint_str(&mut b, name);
            put_uvarint_str(&mut b, value);
            put_uvarint(&mut b, off + postings_start);
            crc = crc32c::crc32c_append(crc, &b);
            self.out.write(&b)?;
        }
        self.out.write(&crc.to_be_bytes())
    }
}

fn tmp_postings_path(path: &Path) -> PathBuf {
    let mut p = path.as_os_str().to_owned();
    p.push("_tmp_p");
    PathBuf::from(p)
}

struct TmpFile {
    out: Out,
}

impl TmpFile {
    fn create(path: &Path) -> Result<TmpFile, Error> {
        Ok(TmpFile {
            out: Out::create(path)?,
        })
    }
}
