//! The head's memory-mapped chunk files, `<data dir>/chunks_head/000001`, `000002`, … in Prometheus'
//! head-chunk format (`docs/format/head_chunks.md`).
//!
//! When the head cuts a series' chunk, the completed chunk is appended to the current file together with
//! the series ref and its time span, and the series keeps only a [`HeadChunkRef`] (file number and byte
//! offset) plus the span. The bytes are read back through a read-only memory map of the file, so a
//! closed chunk costs the head a few dozen bytes of RAM instead of its encoded size, and the kernel
//! may drop the pages whenever it needs the memory.
//!
//! This module owns the file framing ([`scan_file`], [`encode_chunk`]), the buffered writer with its
//! file cutting and fsync points, reading a chunk by reference, loading the files at open (with repair
//! of a torn or damaged tail) and deleting files no series needs any more. It does not own which chunks
//! a series has or when a chunk is cut ([`crate::head`]), nor durability of samples: the WAL stays the
//! source of truth, so losing the unsynced end of a chunk file after a crash costs replay time, never
//! data.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use memmap2::{Mmap, MmapOptions};
use parking_lot::{Mutex, RwLock};

use crate::chunks::decoded_cache::{DecodedChunkCache, Key as CacheKey, next_reader_number};
use crate::error::{Error, Result};
use crate::read::{ChunkData, ChunkFailure};

/// Name of the directory inside the data directory.
pub const DIR_NAME: &str = "chunks_head";
/// Magic number opening every head chunk file, big-endian.
pub const MAGIC: u32 = 0x0130_BC91;
/// The only format version.
pub const FORMAT_V1: u8 = 1;
/// Magic (4 bytes), version (1 byte), zero padding (3 bytes).
pub const FILE_HEADER_SIZE: usize = 8;
/// A new file is started before a chunk would push the current one past this size (Prometheus' limit).
pub const MAX_FILE_SIZE: u64 = 128 << 20;
/// Series ref, min time and max time (8 bytes each) and the encoding byte before the length field.
pub const CHUNK_FIXED_HEADER: usize = 8 + 8 + 8 + 1;
/// The length field is a uvarint of at most 5 bytes.
pub const MAX_LEN_FIELD: usize = 5;
/// CRC-32C (Castagnoli) after the data, over everything from the series ref to the data's end.
pub const CRC_SIZE: usize = 4;
/// The largest a chunk's framing can be: with fewer bytes than this left, a file may only hold zeros.
pub const MAX_CHUNK_META_SIZE: usize = CHUNK_FIXED_HEADER + MAX_LEN_FIELD + CRC_SIZE;
/// Bytes collected in memory before they are written to the file (Prometheus' default buffer).
pub const WRITE_BUFFER_SIZE: usize = 4 << 20;
/// The encoding bit Prometheus sets on out-of-order head chunks.
pub const OUT_OF_ORDER_BIT: u8 = 0x80;

/// Where a chunk starts in the head chunk files: the file's number (its name, `000001` is 1) in the
/// upper 32 bits and the byte offset of the chunk's series ref field in the lower 32 bits. This is
/// Prometheus' `ChunkDiskMapperRef`.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Debug, Default)]
pub struct HeadChunkRef(pub u64);

impl HeadChunkRef {
    pub const fn new(file: u32, offset: u32) -> Self {
        HeadChunkRef(((file as u64) << 32) | offset as u64)
    }
    pub const fn file(self) -> u32 {
        (self.0 >> 32) as u32
    }
    pub const fn offset(self) -> u32 {
        self.0 as u32
    }
}

/// One chunk found by [`scan_file`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ScannedChunk {
    /// The head series ref the chunk belongs to.
    pub series: u64,
    /// Offset of the chunk's first byte (its series ref field).
    pub offset: u32,
    pub min_t: i64,
    pub max_t: i64,
    /// The encoding byte as stored (the out-of-order bit included).
    pub encoding: u8,
    /// The first two data bytes read as a big-endian count: the sample count of XOR chunks.
    pub num_samples: u16,
    /// Where the chunk's data starts and how long it is.
    pub data_start: usize,
    pub data_len: usize,
}

/// Why a file's content stops being readable, and where.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Damage {
    /// The byte where the first unreadable chunk (or the header) starts.
    pub offset: u64,
    pub reason: String,
}

/// Checks a file's 8-byte header.
pub fn check_header(bytes: &[u8]) -> std::result::Result<(), Damage> {
    let damage = |reason: String| Damage { offset: 0, reason };
    if bytes.len() < FILE_HEADER_SIZE {
        return Err(damage(format!(
            "file of {} bytes is shorter than the {FILE_HEADER_SIZE}-byte header",
            bytes.len()
        )));
    }
    let magic = u32::from_be_bytes(bytes[..4].try_into().expect("4 bytes"));
    if magic != MAGIC {
        return Err(damage(format!(
            "magic number {magic:#010x}, expected {MAGIC:#010x}"
        )));
    }
    if bytes[4] != FORMAT_V1 {
        return Err(damage(format!(
            "format version {}, expected {FORMAT_V1}",
            bytes[4]
        )));
    }
    Ok(())
}

/// Walks the chunks of one head chunk file (header included in `bytes`), calling `f` for each intact
/// one in file order. Returns `Ok(end)` with the offset where the content ends (the file's end, or
/// the start of the zero padding Prometheus preallocates), or the first damage: a bad header, a chunk
/// cut off by the end of the file, an unreadable length, or a checksum mismatch. Chunks before the
/// damage have been passed to `f`.
pub fn scan_file(
    bytes: &[u8],
    mut f: impl FnMut(&ScannedChunk),
) -> std::result::Result<usize, Damage> {
    check_header(bytes)?;
    // Offsets are 32-bit in references: anything past that cannot be addressed.
    let end = bytes.len().min(u32::MAX as usize);
    let mut pos = FILE_HEADER_SIZE;
    while pos < end {
        let rest = &bytes[pos..end];
        let damage = |reason: String| Damage {
            offset: pos as u64,
            reason,
        };
        if rest.len() < MAX_CHUNK_META_SIZE && rest.iter().all(|&b| b == 0) {
            return Ok(pos);
        }
        if rest.len() < CHUNK_FIXED_HEADER + 1 {
            return Err(damage(format!(
                "{} bytes left, too few for a chunk header",
                rest.len()
            )));
        }
        let be = |i: usize| u64::from_be_bytes(rest[i..i + 8].try_into().expect("8 bytes"));
        let (series, min_t, max_t) = (be(0), be(8) as i64, be(16) as i64);
        // Prometheus preallocates files with zeros; series refs start at 1, so a zero triple is the end
        // — when everything after it is zero too. Prometheus stops at the triple alone; a single
        // flipped bit can zero the triple of a real chunk, and that is damage, not the end.
        if series == 0 && min_t == 0 && max_t == 0 {
            if rest.iter().all(|&b| b == 0) {
                return Ok(pos);
            }
            return Err(damage(
                "a zero series reference and time range followed by data: not padding".into(),
            ));
        }
        let encoding = rest[24];
        let Some((len, n)) = read_uvarint(&rest[CHUNK_FIXED_HEADER..]) else {
            return Err(damage("unreadable chunk length".into()));
        };
        let data_start = CHUNK_FIXED_HEADER + n;
        let total = usize::try_from(len)
            .ok()
            .and_then(|l| data_start.checked_add(l)?.checked_add(CRC_SIZE));
        let Some(total) = total.filter(|&t| t <= rest.len()) else {
            return Err(damage(format!(
                "chunk of {len} data bytes extends past the end of the file ({} bytes left)",
                rest.len()
            )));
        };
        let data_end = total - CRC_SIZE;
        let stored = u32::from_be_bytes(rest[data_end..total].try_into().expect("4 bytes"));
        let computed = crc32c::crc32c(&rest[..data_end]);
        if stored != computed {
            return Err(damage(format!(
                "checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
            )));
        }
        let data = &rest[data_start..data_end];
        let num_samples = if data.len() >= 2 {
            u16::from_be_bytes([data[0], data[1]])
        } else {
            0
        };
        f(&ScannedChunk {
            series,
            offset: pos as u32,
            min_t,
            max_t,
            encoding,
            num_samples,
            data_start: pos + data_start,
            data_len: data.len(),
        });
        pos += total;
    }
    Ok(pos)
}

/// Appends one chunk in head-chunk framing to `out`.
pub fn encode_chunk(
    out: &mut Vec<u8>,
    series: u64,
    min_t: i64,
    max_t: i64,
    encoding: u8,
    data: &[u8],
) {
    let start = out.len();
    out.extend_from_slice(&series.to_be_bytes());
    out.extend_from_slice(&(min_t as u64).to_be_bytes());
    out.extend_from_slice(&(max_t as u64).to_be_bytes());
    out.push(encoding);
    let mut len = data.len() as u64;
    while len >= 0x80 {
        out.push(len as u8 | 0x80);
        len >>= 7;
    }
    out.push(len as u8);
    out.extend_from_slice(data);
    let crc = crc32c::crc32c(&out[start..]);
    out.extend_from_slice(&crc.to_be_bytes());
}

/// Bytes [`encode_chunk`] produces for `data_len` bytes of data.
pub fn framed_size(data_len: usize) -> usize {
    let mut n = 1;
    let mut l = data_len >> 7;
    while l > 0 {
        n += 1;
        l >>= 7;
    }
    CHUNK_FIXED_HEADER + n + data_len + CRC_SIZE
}

/// A uvarint of at most [`MAX_LEN_FIELD`] bytes (a 32-bit length), and its size.
fn read_uvarint(b: &[u8]) -> Option<(u64, usize)> {
    let mut v = 0u64;
    for (i, &byte) in b.iter().take(MAX_LEN_FIELD).enumerate() {
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte < 0x80 {
            return (v <= u64::from(u32::MAX)).then_some((v, i + 1));
        }
    }
    None
}

/// File name of head chunk file `n`: six digits at least, as Prometheus names them.
pub fn file_name(n: u32) -> String {
    format!("{n:06}")
}

/// A head chunk file mapped for reading. For the file being written the map covers
/// [`MAX_FILE_SIZE`] bytes while the file is shorter; only bytes already written are ever read.
pub(crate) struct MappedFile {
    path: PathBuf,
    map: Mmap,
    /// Process-unique number naming this map's chunks in the decoded-chunk cache.
    number: u64,
    /// Where queries keep this file's decoded chunks (set when the head hands out a chunk of it).
    decoded: std::sync::OnceLock<Arc<DecodedChunkCache>>,
}

impl MappedFile {
    fn open(path: &Path, len: Option<usize>) -> Result<MappedFile> {
        let file = File::open(path).map_err(|e| io_err(path, e))?;
        let mut o = MmapOptions::new();
        if let Some(len) = len {
            o.len(len);
        }
        // SAFETY: the file is only ever appended to by this process and truncated only before it is
        // mapped (repair at open); reads stay below the length written, so the map never changes under
        // a reader or reaches past the end of the file.
        let map = unsafe { o.map(&file) }.map_err(|e| io_err(path, e))?;
        Ok(MappedFile {
            path: path.to_path_buf(),
            map,
            number: next_reader_number(),
            decoded: std::sync::OnceLock::new(),
        })
    }

    /// The decoded-chunk cache and the key of the chunk whose data starts at `start`, once the head
    /// has a cache. Chunks below the flushed length never change, so a key stays valid for the map's
    /// lifetime.
    pub(crate) fn decoded_cache(&self, start: u32) -> Option<(&DecodedChunkCache, CacheKey)> {
        Some((self.decoded.get()?, (self.number, 0, start)))
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        &self.map
    }

    pub(crate) fn path(&self) -> &Path {
        &self.path
    }
}

fn io_err(path: &Path, source: std::io::Error) -> Error {
    Error::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// The writing side: the current file, the bytes not yet written to it, and where the next chunk goes.
struct Writer {
    file: Option<File>,
    /// Number of the current file (0 before the first one of this process).
    seq: u32,
    /// Logical size of the current file, buffered bytes included: the offset of the next chunk.
    size: u64,
    buf: Vec<u8>,
    /// Start the next chunk in a new file (set by truncation so the current file can go next time).
    cut_next: bool,
    /// Newest file number found at open; the first file this process writes comes after it.
    last_on_disk: u32,
}

/// The head's chunk files: writer, memory maps of every file, and the bookkeeping truncation needs.
pub(crate) struct HeadChunks {
    dir: PathBuf,
    files: RwLock<BTreeMap<u32, Arc<MappedFile>>>,
    w: Mutex<Writer>,
    /// Number of the file being written, and how many of its bytes are on disk (readable by the map).
    cur_seq: AtomicU32,
    flushed: AtomicU64,
    pub(crate) stats: HeadChunkStats,
    /// The database's decoded-chunk cache, handed to each file a query reads from.
    decoded: std::sync::OnceLock<Arc<DecodedChunkCache>>,
}

/// Counters for self-metrics and tests.
#[derive(Default)]
pub(crate) struct HeadChunkStats {
    pub(crate) chunks_written: AtomicU64,
    pub(crate) write_errors: AtomicU64,
}

/// A chunk the load found, for the replay to attach to its series.
#[derive(Clone, Copy, Debug)]
pub(crate) struct LoadedChunk {
    pub(crate) series: u64,
    pub(crate) r: HeadChunkRef,
    pub(crate) min_t: i64,
    pub(crate) max_t: i64,
}

/// What [`HeadChunks::open`] found and repaired.
#[derive(Debug, Default, Clone)]
pub struct HeadChunksLoad {
    pub files: usize,
    /// Chunks in the files, in file order, with an XOR encoding.
    pub chunks: usize,
    /// Chunks of another encoding (histograms, out-of-order) Ember does not read; the WAL replays
    /// what it can of those series.
    pub skipped_chunks: usize,
    /// The damage found, if any: the file, the offset and why. Everything from there on was dropped
    /// (the file cut there if it was the last one, else that file and every later one deleted), and
    /// the WAL replays those samples.
    pub damage: Option<(PathBuf, u64, String)>,
    /// Largest series ref any chunk names; new series get refs above it so no ref is reused for
    /// another series while old chunks still name it.
    pub max_series_ref: u64,
}

impl HeadChunks {
    /// Lets queries keep decoded chunks of these files in `cache`.
    pub(crate) fn use_decoded_cache(&self, cache: &Arc<DecodedChunkCache>) {
        let _ = self.decoded.set(cache.clone());
    }

    /// Opens `<data dir>/chunks_head`, creating it if missing, maps every file and walks its chunks.
    /// `on_chunk` gets every intact XOR chunk in file order. Damage is repaired as described on
    /// [`HeadChunksLoad::damage`]; only I/O errors fail the open.
    pub(crate) fn open(
        data_dir: &Path,
        mut on_chunk: impl FnMut(LoadedChunk),
    ) -> Result<(HeadChunks, HeadChunksLoad)> {
        let dir = data_dir.join(DIR_NAME);
        std::fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
        let mut numbers = list_files(&dir)?;
        let mut load = HeadChunksLoad::default();
        // A file created just before a crash may be empty or hold only part of its header.
        if let Some(&last) = numbers.last() {
            let path = dir.join(file_name(last));
            let len = std::fs::metadata(&path)
                .map_err(|e| io_err(&path, e))?
                .len();
            let head = if len >= 4 {
                let f = File::open(&path).map_err(|e| io_err(&path, e))?;
                let mut b = [0u8; 4];
                std::io::Read::read_exact(&mut &f, &mut b).map_err(|e| io_err(&path, e))?;
                u32::from_be_bytes(b)
            } else {
                0
            };
            if head == 0 {
                tracing::warn!(file = %path.display(), "removing an empty head chunk file left by a crash");
                std::fs::remove_file(&path).map_err(|e| io_err(&path, e))?;
                numbers.pop();
            }
        }
        let mut files = BTreeMap::new();
        let mut by_series_last: crate::head::IdMap<i64> = Default::default();
        let mut stop: Option<(usize, Damage)> = None;
        for (i, &n) in numbers.iter().enumerate() {
            if i > 0 && numbers[i - 1].checked_add(1) != Some(n) {
                stop = Some((
                    i,
                    Damage {
                        offset: 0,
                        reason: format!(
                            "file {} follows {} (a file is missing in between)",
                            file_name(n),
                            file_name(numbers[i - 1])
                        ),
                    },
                ));
                break;
            }
            let path = dir.join(file_name(n));
            let mapped = MappedFile::open(&path, None)?;
            let mut found: Vec<LoadedChunk> = Vec::new();
            let mut skipped = 0usize;
            let mut overlap: Option<Damage> = None;
            let scanned = scan_file(mapped.bytes(), |c| {
                if overlap.is_some() {
                    return;
                }
                if c.encoding != crate::chunkenc::ENCODING_XOR {
                    skipped += 1;
                    return;
                }
                // A series' chunks are written in time order; one that starts before the previous
                // one ended cannot be trusted, nor can anything after it.
                let last = by_series_last.entry(c.series).or_insert(i64::MIN);
                if c.min_t <= *last || c.max_t < c.min_t {
                    overlap = Some(Damage {
                        offset: u64::from(c.offset),
                        reason: format!(
                            "chunk of series {} spans [{}, {}], out of sequence with its previous chunk ending at {}",
                            c.series, c.min_t, c.max_t, *last
                        ),
                    });
                    return;
                }
                *last = c.max_t;
                found.push(LoadedChunk {
                    series: c.series,
                    r: HeadChunkRef::new(n, c.offset),
                    min_t: c.min_t,
                    max_t: c.max_t,
                });
            });
            let damage = overlap.or(scanned.err());
            if let Some(d) = &damage {
                // Only chunks before the damage count: drop the ones the scan passed after it.
                found.retain(|c| u64::from(c.r.offset()) < d.offset);
            }
            load.files += 1;
            load.chunks += found.len();
            load.skipped_chunks += skipped;
            for c in &found {
                load.max_series_ref = load.max_series_ref.max(c.series);
            }
            // The walk touched every page of the map, which would count in the process' RSS for as
            // long as the map lives; a fresh map for reading starts with no page touched.
            drop(mapped);
            match damage {
                None => {
                    found.into_iter().for_each(&mut on_chunk);
                    files.insert(n, Arc::new(MappedFile::open(&path, None)?));
                }
                Some(d) if i + 1 == numbers.len() && d.offset > FILE_HEADER_SIZE as u64 => {
                    // The newest file: keep what precedes the damage and cut the rest off, so new
                    // files follow a clean one.
                    tracing::warn!(file = %path.display(), offset = d.offset, reason = %d.reason,
                        "head chunk file damaged; cutting it at the damage, the WAL replays the rest");
                    let f = File::options()
                        .write(true)
                        .open(&path)
                        .map_err(|e| io_err(&path, e))?;
                    f.set_len(d.offset).map_err(|e| io_err(&path, e))?;
                    f.sync_all().map_err(|e| io_err(&path, e))?;
                    found.into_iter().for_each(&mut on_chunk);
                    files.insert(n, Arc::new(MappedFile::open(&path, None)?));
                    load.damage = Some((path, d.offset, d.reason));
                }
                Some(d) => {
                    load.chunks -= found.len();
                    stop = Some((i, d));
                    break;
                }
            }
        }
        if let Some((i, d)) = stop {
            let path = dir.join(file_name(numbers[i]));
            tracing::warn!(file = %path.display(), offset = d.offset, reason = %d.reason,
                "head chunk file damaged; deleting it and every later file, the WAL replays their samples");
            for &n in &numbers[i..] {
                let p = dir.join(file_name(n));
                std::fs::remove_file(&p).map_err(|e| io_err(&p, e))?;
            }
            numbers.truncate(i);
            load.damage = Some((path, d.offset, d.reason));
        }
        let last_on_disk = numbers.last().copied().unwrap_or(0);
        Ok((
            HeadChunks {
                dir,
                files: RwLock::new(files),
                w: Mutex::new(Writer {
                    file: None,
                    seq: last_on_disk,
                    size: 0,
                    buf: Vec::new(),
                    cut_next: false,
                    last_on_disk,
                }),
                cur_seq: AtomicU32::new(0),
                flushed: AtomicU64::new(0),
                decoded: std::sync::OnceLock::new(),
                stats: HeadChunkStats::default(),
            },
            load,
        ))
    }

    /// Appends a completed chunk of `series`; returns where it went. The bytes reach the file when the
    /// buffer fills, the file is cut, or at [`HeadChunks::sync`].
    pub(crate) fn write(
        &self,
        series: u64,
        min_t: i64,
        max_t: i64,
        data: &[u8],
    ) -> Result<HeadChunkRef> {
        let total = framed_size(data.len()) as u64;
        let mut w = self.w.lock();
        if w.file.is_none() || w.cut_next || w.size + total > MAX_FILE_SIZE {
            self.cut(&mut w)?;
        }
        if w.buf.len() as u64 + total > WRITE_BUFFER_SIZE as u64 && !w.buf.is_empty() {
            self.flush(&mut w)?;
        }
        if w.buf.capacity() == 0 {
            w.buf.reserve_exact(WRITE_BUFFER_SIZE);
        }
        let r = HeadChunkRef::new(w.seq, w.size as u32);
        encode_chunk(
            &mut w.buf,
            series,
            min_t,
            max_t,
            crate::chunkenc::ENCODING_XOR,
            data,
        );
        w.size += total;
        self.stats.chunks_written.fetch_add(1, Ordering::Relaxed);
        Ok(r)
    }

    /// Writes the buffer to the current file (no fsync).
    fn flush(&self, w: &mut Writer) -> Result<()> {
        if w.buf.is_empty() {
            return Ok(());
        }
        let path = self.dir.join(file_name(w.seq));
        let file = w.file.as_mut().expect("a buffered chunk has a file");
        file.write_all(&w.buf).map_err(|e| io_err(&path, e))?;
        w.buf.clear();
        self.flushed.store(w.size, Ordering::Release);
        Ok(())
    }

    /// Finishes the current file (flush, fsync) and starts the next one with its header.
    fn cut(&self, w: &mut Writer) -> Result<()> {
        if w.file.is_some() {
            self.flush(w)?;
            let path = self.dir.join(file_name(w.seq));
            let file = w.file.take().expect("checked");
            file.sync_all().map_err(|e| io_err(&path, e))?;
        }
        let seq = w.seq.max(w.last_on_disk) + 1;
        let path = self.dir.join(file_name(seq));
        let mut file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;
        let mut header = [0u8; FILE_HEADER_SIZE];
        header[..4].copy_from_slice(&MAGIC.to_be_bytes());
        header[4] = FORMAT_V1;
        file.write_all(&header).map_err(|e| io_err(&path, e))?;
        crate::block::fileutil::sync_dir(&self.dir)?;
        let mapped = Arc::new(MappedFile::open(&path, Some(MAX_FILE_SIZE as usize))?);
        self.files.write().insert(seq, mapped);
        w.file = Some(file);
        w.seq = seq;
        w.size = FILE_HEADER_SIZE as u64;
        w.cut_next = false;
        // Readers of the new file wait for the writer lock until its first flush.
        self.flushed
            .store(FILE_HEADER_SIZE as u64, Ordering::Release);
        self.cur_seq.store(seq, Ordering::Release);
        Ok(())
    }

    /// Flushes and fsyncs the current file (at close).
    pub(crate) fn sync(&self) -> Result<()> {
        let mut w = self.w.lock();
        if w.file.is_none() {
            return Ok(());
        }
        self.flush(&mut w)?;
        let path = self.dir.join(file_name(w.seq));
        w.file
            .as_ref()
            .expect("checked")
            .sync_all()
            .map_err(|e| io_err(&path, e))
    }

    /// The bytes of the chunk at `r`, which this process wrote or the load found intact: mapped from
    /// the file, or copied from the write buffer while they are still there.
    pub(crate) fn chunk(&self, r: HeadChunkRef) -> ChunkData {
        let (seq, off) = (r.file(), u64::from(r.offset()));
        if seq == self.cur_seq.load(Ordering::Acquire)
            && off >= self.flushed.load(Ordering::Acquire)
        {
            let mut w = self.w.lock();
            if w.seq == seq && w.file.is_some() && off >= self.flushed.load(Ordering::Acquire) {
                // A query wants a chunk still in the write buffer: write the buffer out (no
                // fsync), so this and every other buffered chunk is read through the map, and
                // cached decoded, from now on. Copied out of the buffer under the writer's lock
                // instead, a server that had just ingested paid a copy and a decode of its
                // newest few thousand chunks on every query.
                if self.flush(&mut w).is_err() {
                    let start = (off - (w.size - w.buf.len() as u64)) as usize;
                    return match frame_data(&w.buf, start) {
                        Some((s, l)) => ChunkData::Mem(Arc::from(&w.buf[s..s + l])),
                        None => self.failed(r, "chunk reference beyond the written data".into()),
                    };
                }
            }
        }
        let Some(file) = self.files.read().get(&seq).cloned() else {
            return self.failed(r, format!("head chunk file {} is gone", file_name(seq)));
        };
        if let Some(c) = self.decoded.get()
            && file.decoded.get().is_none()
        {
            let _ = file.decoded.set(c.clone());
        }
        match frame_data(file.bytes(), off as usize) {
            Some((start, len)) => ChunkData::Head {
                file,
                start: start as u32,
                len: len as u32,
            },
            None => self.failed(r, "chunk reference beyond the written data".into()),
        }
    }

    fn failed(&self, r: HeadChunkRef, reason: String) -> ChunkData {
        ChunkData::Failed(Arc::new(ChunkFailure {
            path: self.dir.join(file_name(r.file())),
            offset: u64::from(r.offset()),
            reason,
        }))
    }

    /// Deletes every file numbered below `min_needed` (the oldest file a series still references),
    /// never the one being written, and arranges for the next chunk to start a new file so that the
    /// current one can go at a later truncation. Maps held by running queries stay valid.
    pub(crate) fn truncate(&self, min_needed: u32) -> Result<usize> {
        {
            let mut w = self.w.lock();
            if w.file.is_some() && w.size > FILE_HEADER_SIZE as u64 {
                w.cut_next = true;
            }
        }
        let cur = self.cur_seq.load(Ordering::Acquire);
        let doomed: Vec<u32> = {
            let mut files = self.files.write();
            let doomed: Vec<u32> = files
                .keys()
                .copied()
                .take_while(|&n| n < min_needed && n != cur)
                .collect();
            for n in &doomed {
                files.remove(n);
            }
            doomed
        };
        for &n in &doomed {
            let p = self.dir.join(file_name(n));
            match std::fs::remove_file(&p) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&p, e)),
            }
        }
        Ok(doomed.len())
    }

    /// The oldest file a chunk written from now on can go to.
    pub(crate) fn write_floor(&self) -> u32 {
        let w = self.w.lock();
        if w.file.is_some() {
            w.seq
        } else {
            w.seq.max(w.last_on_disk).saturating_add(1)
        }
    }

    /// How many files are kept (mapped).
    pub(crate) fn file_count(&self) -> usize {
        self.files.read().len()
    }

    /// Numbers of the files currently kept.
    #[cfg(test)]
    pub(crate) fn file_numbers(&self) -> Vec<u32> {
        self.files.read().keys().copied().collect()
    }
}

impl Drop for HeadChunks {
    fn drop(&mut self) {
        // Not a crash: give the kernel what is buffered, so the next open maps it instead of
        // replaying it from the WAL. No fsync; the WAL holds these samples anyway.
        let mut w = self.w.lock();
        if w.file.is_some()
            && let Err(e) = self.flush(&mut w)
        {
            tracing::warn!(error = %e, "flushing head chunks on drop failed");
        }
    }
}

/// Data start and length of the chunk framed at `off` in `bytes`, if the frame lies inside them.
fn frame_data(bytes: &[u8], off: usize) -> Option<(usize, usize)> {
    let len_at = off.checked_add(CHUNK_FIXED_HEADER)?;
    let (len, n) = read_uvarint(bytes.get(len_at..)?)?;
    let start = len_at + n;
    let end = start.checked_add(usize::try_from(len).ok()?)?;
    (end <= bytes.len()).then_some((start, end - start))
}

/// Numbers of the files in `dir` whose names are decimal numbers, ascending.
fn list_files(dir: &Path) -> Result<Vec<u32>> {
    let mut out = Vec::new();
    for e in std::fs::read_dir(dir).map_err(|e| io_err(dir, e))? {
        let e = e.map_err(|e| io_err(dir, e))?;
        let name = e.file_name();
        let Some(name) = name.to_str() else { continue };
        if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
            continue;
        }
        if let Ok(n) = name.parse::<u32>()
            && n > 0
        {
            out.push(n);
        }
    }
    out.sort_unstable();
    Ok(out)
}

#[cfg(test)]
mod tests;
