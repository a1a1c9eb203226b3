//! Ember-only zstd-compressed chunk segments (`docs/format/chunk_segments.md`, "Ember zstd segments").
//!
//! A compressed segment holds the same chunk frames (length, encoding, data, CRC-32C) a Prometheus
//! segment would hold, at the same *logical* offsets, but stores them as a sequence of independent zstd
//! frames, each compressing a run of whole chunk frames, followed by a frame table and a footer. A
//! [`super::ChunkRef`] keeps meaning "segment, offset of the chunk frame in the uncompressed segment", so
//! a block's index is the same bytes whether or not its chunks are compressed; the frame table maps a
//! logical offset to the one zstd frame to decompress. The file starts with its own magic number, so
//! Prometheus and promtool refuse it rather than misread it.
//!
//! Version 1 frames decompress to the chunk frames themselves; version 2 frames (what the writer makes
//! by default) decompress to a columnar payload that [`super::columnar`] decodes to those chunk frames,
//! which compresses about 2.7 times better on scrape data.
//!
//! This module owns that layout: parsing and checking the table ([`ZstdSegment::parse`]), finding and
//! decompressing the frame that holds a chunk, and building a segment ([`ZstdSegmentBuilder`], used by
//! [`super::ChunkWriter`]; [`encode_segment`] in memory). Caching decompressed frames and mapping files is [`super::reader`]'s job.
//! Everything here works on byte slices and never panics on arbitrary input.
#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

use std::path::Path;

use super::columnar::{self, EncodeStats};
use super::segment::{corrupt, parse_frame};
use super::{RawChunk, SEGMENT_HEADER_SIZE};
use crate::Result;

/// Magic number of a compressed segment, big-endian: ASCII "EMZC". Not Prometheus' `0x85BD40DD`.
pub const ZSTD_SEGMENT_MAGIC: u32 = 0x454D_5A43;
/// Version 1: each zstd frame holds chunk frames as they are (still read; written on request).
pub const ZSTD_SEGMENT_FORMAT_V1: u8 = 1;
/// Version 2: each zstd frame holds a columnar payload ([`super::columnar`]) that decodes to the chunk
/// frames. What the writer produces by default.
pub const ZSTD_SEGMENT_FORMAT_V2: u8 = 2;
/// Footer: table offset (u64), frame count (u32), table CRC-32C (u32), logical length (u32), magic (u32).
pub const ZSTD_FOOTER_SIZE: usize = 24;
/// One version 1 frame table entry: logical start, logical length, compressed length, CRC-32C of the
/// compressed bytes (u32 each).
pub const ZSTD_FRAME_ENTRY_SIZE: usize = 16;
/// One version 2 entry: logical start, logical length, payload length (the decompressed columnar
/// bytes), compressed length, CRC-32C (u32 each).
pub const ZSTD_FRAME_ENTRY_SIZE_V2: usize = 20;
/// Version 1 writers close a frame once it holds at least this many chunk-frame bytes. Larger frames
/// compress better; smaller ones make reading one chunk cheaper (a whole frame is decompressed to read it).
pub const ZSTD_FRAME_TARGET: usize = 64 << 10;
/// The same for version 2 (columnar) frames: see `docs/benchmarks.md` for the measured trade-off.
pub const ZSTD_FRAME_TARGET_V2: usize = 128 << 10;
/// Most uncompressed bytes one frame may hold. The reader refuses larger claims before allocating, so a
/// damaged or hostile table cannot make it reserve gigabytes; the writer refuses chunks that would not
/// fit.
pub const ZSTD_MAX_FRAME: usize = 64 << 20;
/// Compression level of version 1 segments: zstd's default, a good ratio at a speed that keeps
/// compaction bound by reading its inputs.
pub const ZSTD_LEVEL: i32 = 3;
/// Compression level of version 2 segments. Building the columns costs more than zstd at this level, so
/// 9 adds little write time for 2 % fewer bytes; 19 takes five times as long for 4 % more
/// (`docs/benchmarks.md`).
pub const ZSTD_LEVEL_V2: i32 = 9;

/// One entry of the frame table, with the file offset of the frame's compressed bytes (implied by the
/// order of the frames, which are stored back to back after the header).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FrameEntry {
    /// Logical offset of the first chunk frame the zstd frame holds.
    pub logical_start: u32,
    /// Bytes of chunk frames the zstd frame stands for.
    pub logical_len: u32,
    /// Bytes zstd decompresses to: `logical_len` in version 1, the columnar payload in version 2.
    pub payload_len: u32,
    /// Offset of the compressed bytes in the file.
    pub file_offset: u64,
    pub compressed_len: u32,
    /// CRC-32C (Castagnoli) of the compressed bytes.
    pub crc: u32,
}

impl FrameEntry {
    fn logical_end(&self) -> u64 {
        u64::from(self.logical_start) + u64::from(self.logical_len)
    }
}

/// Whether `bytes` (a segment file's contents) start with the compressed segment magic.
pub fn is_zstd_segment(bytes: &[u8]) -> bool {
    bytes
        .first_chunk::<4>()
        .is_some_and(|m| u32::from_be_bytes(*m) == ZSTD_SEGMENT_MAGIC)
}

/// The checked frame table of one compressed segment. Holds no file bytes: the methods take the
/// segment's bytes (and its path, for errors) as arguments, so it can sit next to a memory map.
#[derive(Debug, Clone)]
pub struct ZstdSegment {
    version: u8,
    frames: Vec<FrameEntry>,
    logical_len: u32,
}

fn be32(b: &[u8], at: usize) -> Option<u32> {
    b.get(at..at.checked_add(4)?)
        .and_then(|s| s.first_chunk::<4>())
        .map(|a| u32::from_be_bytes(*a))
}

fn be64(b: &[u8], at: usize) -> Option<u64> {
    b.get(at..at.checked_add(8)?)
        .and_then(|s| s.first_chunk::<8>())
        .map(|a| u64::from_be_bytes(*a))
}

impl ZstdSegment {
    /// Parses and checks the header, footer and frame table of `bytes`, the segment file at `path`:
    /// magic and version, footer magic, table checksum, and that the frames tile the file between
    /// header and table and the logical range from the header's end without gaps. Errors name `path` and
    /// the offset of the faulty field or entry.
    pub fn parse(path: &Path, bytes: &[u8]) -> Result<Self> {
        let len = bytes.len();
        if len < SEGMENT_HEADER_SIZE + ZSTD_FOOTER_SIZE {
            return Err(corrupt(
                path,
                0,
                format!(
                    "zstd segment of {len} bytes is shorter than its header and footer ({} bytes)",
                    SEGMENT_HEADER_SIZE + ZSTD_FOOTER_SIZE
                ),
            ));
        }
        let magic = be32(bytes, 0).unwrap_or_default();
        if magic != ZSTD_SEGMENT_MAGIC {
            return Err(corrupt(
                path,
                0,
                format!(
                    "invalid zstd segment magic {magic:#010x}, want {ZSTD_SEGMENT_MAGIC:#010x}"
                ),
            ));
        }
        let version = bytes.get(4).copied().unwrap_or_default();
        if version != ZSTD_SEGMENT_FORMAT_V1 && version != ZSTD_SEGMENT_FORMAT_V2 {
            return Err(corrupt(
                path,
                4,
                format!("unsupported zstd segment format version {version}"),
            ));
        }
        let foot = len - ZSTD_FOOTER_SIZE;
        let field = |at: usize| corrupt(path, foot + at, "footer truncated".to_string());
        let table_offset = be64(bytes, foot).ok_or_else(|| field(0))?;
        let num_frames = be32(bytes, foot + 8).ok_or_else(|| field(8))?;
        let table_crc = be32(bytes, foot + 12).ok_or_else(|| field(12))?;
        let logical_len = be32(bytes, foot + 16).ok_or_else(|| field(16))?;
        let end_magic = be32(bytes, foot + 20).ok_or_else(|| field(20))?;
        if end_magic != ZSTD_SEGMENT_MAGIC {
            return Err(corrupt(
                path,
                foot + 20,
                format!(
                    "invalid zstd segment footer magic {end_magic:#010x} (a truncated or unfinished file)"
                ),
            ));
        }
        let entry_size = if version == ZSTD_SEGMENT_FORMAT_V1 {
            ZSTD_FRAME_ENTRY_SIZE
        } else {
            ZSTD_FRAME_ENTRY_SIZE_V2
        };
        let table_len = (num_frames as usize).checked_mul(entry_size);
        let table_start = usize::try_from(table_offset).ok();
        let table = match (table_start, table_len) {
            (Some(s), Some(n)) if s >= SEGMENT_HEADER_SIZE && s.checked_add(n) == Some(foot) => {
                bytes.get(s..foot)
            }
            _ => None,
        };
        let Some(table) = table else {
            return Err(corrupt(
                path,
                foot,
                format!(
                    "frame table of {num_frames} entries at offset {table_offset} does not end where the footer starts ({foot})"
                ),
            ));
        };
        let computed = crc32c::crc32c(table);
        if computed != table_crc {
            return Err(corrupt(
                path,
                table_offset as usize,
                format!(
                    "frame table checksum mismatch: stored {table_crc:#010x}, computed {computed:#010x}"
                ),
            ));
        }
        let mut frames = Vec::with_capacity(num_frames as usize);
        let mut file_offset = SEGMENT_HEADER_SIZE as u64;
        let mut logical = SEGMENT_HEADER_SIZE as u64;
        for (i, e) in table.chunks_exact(entry_size).enumerate() {
            let at = table_offset as usize + i * entry_size;
            let logical_len = be32(e, 0x4).unwrap_or_default();
            // Version 2 entries carry the payload length between logical and compressed length.
            let (payload_len, rest) = if version == ZSTD_SEGMENT_FORMAT_V1 {
                (logical_len, 8)
            } else {
                (be32(e, 8).unwrap_or_default(), 12)
            };
            let f = FrameEntry {
                logical_start: be32(e, 0).unwrap_or_default(),
                logical_len,
                payload_len,
                file_offset,
                compressed_len: be32(e, rest).unwrap_or_default(),
                crc: be32(e, rest + 4).unwrap_or_default(),
            };
            let bad =
                |reason: String| corrupt(path, at, format!("frame table entry {i}: {reason}"));
            if u64::from(f.logical_start) != logical {
                return Err(bad(format!(
                    "logical start {} where the previous frame ends at {logical}",
                    f.logical_start
                )));
            }
            if f.logical_len == 0 || f.logical_len as usize > ZSTD_MAX_FRAME {
                return Err(bad(format!(
                    "logical length {} outside 1..={ZSTD_MAX_FRAME}",
                    f.logical_len
                )));
            }
            if version == ZSTD_SEGMENT_FORMAT_V2
                && f.payload_len as usize > columnar::max_payload(f.logical_len as usize)
            {
                return Err(bad(format!(
                    "payload length {} is more than a {}-byte frame can need",
                    f.payload_len, f.logical_len
                )));
            }
            logical = f.logical_end();
            file_offset += u64::from(f.compressed_len);
            if file_offset > table_offset {
                return Err(bad(format!(
                    "compressed bytes end at {file_offset}, past the frame table at {table_offset}"
                )));
            }
            frames.push(f);
        }
        if file_offset != table_offset {
            return Err(corrupt(
                path,
                table_offset as usize,
                format!("frames end at {file_offset} but the frame table starts at {table_offset}"),
            ));
        }
        if logical != u64::from(logical_len) {
            return Err(corrupt(
                path,
                foot + 16,
                format!("footer claims {logical_len} logical bytes, the frames cover {logical}"),
            ));
        }
        Ok(ZstdSegment {
            version,
            frames,
            logical_len,
        })
    }

    /// The frames, in file (and logical) order.
    pub fn frames(&self) -> &[FrameEntry] {
        &self.frames
    }

    /// The segment's format version ([`ZSTD_SEGMENT_FORMAT_V1`] or [`ZSTD_SEGMENT_FORMAT_V2`]).
    pub fn version(&self) -> u8 {
        self.version
    }

    /// Length of the uncompressed segment the frames stand for, header included.
    pub fn logical_len(&self) -> u32 {
        self.logical_len
    }

    /// Index of the frame holding the chunk frame at logical `offset`.
    pub fn frame_of(&self, path: &Path, offset: u32) -> Result<usize> {
        if (offset as usize) < SEGMENT_HEADER_SIZE {
            return Err(corrupt(
                path,
                offset as usize,
                format!(
                    "chunk offset {offset} lies inside the {SEGMENT_HEADER_SIZE}-byte segment header"
                ),
            ));
        }
        let i = self
            .frames
            .partition_point(|f| f.logical_start <= offset)
            .checked_sub(1);
        match i.and_then(|i| Some((i, self.frames.get(i)?))) {
            Some((i, f)) if u64::from(offset) < f.logical_end() => Ok(i),
            _ => Err(corrupt(
                path,
                offset as usize,
                format!(
                    "chunk offset {offset} is past the end of the compressed segment's {} logical bytes",
                    self.logical_len
                ),
            )),
        }
    }

    /// Decompresses frame `i` of `bytes` (the segment at `path`) after checking its CRC-32C; the result
    /// is the run of chunk frames (decoded from the columnar payload in version 2), exactly the frame's
    /// logical length. Errors name the frame's offset in the file.
    pub fn decompress(&self, path: &Path, bytes: &[u8], i: usize) -> Result<Vec<u8>> {
        let Some(f) = self.frames.get(i) else {
            return Err(corrupt(
                path,
                0,
                format!("frame {i} does not exist ({} frames)", self.frames.len()),
            ));
        };
        let at = f.file_offset as usize;
        let bad = |reason: String| {
            corrupt(
                path,
                at,
                format!(
                    "zstd frame {i} (logical bytes {}..{}): {reason}",
                    f.logical_start,
                    f.logical_end()
                ),
            )
        };
        let src = bytes
            .get(at..at.saturating_add(f.compressed_len as usize))
            .ok_or_else(|| bad("compressed bytes run past the end of the file".to_string()))?;
        let computed = crc32c::crc32c(src);
        if computed != f.crc {
            return Err(bad(format!(
                "checksum mismatch: stored {:#010x}, computed {computed:#010x}",
                f.crc
            )));
        }
        let out = zstd::bulk::decompress(src, f.payload_len as usize)
            .map_err(|e| bad(format!("zstd: {e}")))?;
        if out.len() != f.payload_len as usize {
            return Err(bad(format!(
                "decompressed to {} bytes, the table says {}",
                out.len(),
                f.payload_len
            )));
        }
        if self.version == ZSTD_SEGMENT_FORMAT_V1 {
            return Ok(out);
        }
        columnar::decode(&out, f.logical_len as usize)
            .map_err(|e| bad(format!("columnar payload: {e}")))
    }

    /// The chunk at logical `offset`, given `frame`, the decompressed bytes of frame `i` (which must
    /// hold `offset`). A damaged chunk frame is reported at the zstd frame's file offset, with the
    /// chunk's logical offset in the reason.
    pub fn chunk_in<'f>(
        &self,
        path: &Path,
        i: usize,
        frame: &'f [u8],
        offset: u32,
    ) -> Result<RawChunk<'f>> {
        self.frame_chunk(path, i, frame, offset).map(|(c, _)| c)
    }

    /// [`ZstdSegment::chunk_in`], also returning the logical offset just past the chunk's frame.
    fn frame_chunk<'f>(
        &self,
        path: &Path,
        i: usize,
        frame: &'f [u8],
        offset: u32,
    ) -> Result<(RawChunk<'f>, u32)> {
        let Some(f) = self.frames.get(i) else {
            return Err(corrupt(path, 0, format!("frame {i} does not exist")));
        };
        let local = offset.checked_sub(f.logical_start).map(|l| l as usize);
        let bad = |reason: String| {
            corrupt(
                path,
                f.file_offset as usize,
                format!("chunk at logical offset {offset} in zstd frame {i}: {reason}"),
            )
        };
        let local = local.ok_or_else(|| bad("offset precedes the frame".to_string()))?;
        let (chunk, end) = parse_frame(frame, local).map_err(bad)?;
        Ok((chunk, f.logical_start.saturating_add(end as u32)))
    }

    /// Decompresses frame `i` and returns its chunks with their logical offsets, in order; stops at
    /// (and returns) the first damaged chunk frame.
    pub fn frame_chunks(
        &self,
        path: &Path,
        bytes: &[u8],
        i: usize,
    ) -> Result<Vec<(u32, u8, Vec<u8>)>> {
        let frame = self.decompress(path, bytes, i)?;
        let Some(f) = self.frames.get(i) else {
            return Ok(Vec::new());
        };
        let mut out = Vec::new();
        let mut pos = f.logical_start;
        while u64::from(pos) < f.logical_end() {
            let (c, next) = self.frame_chunk(path, i, &frame, pos)?;
            out.push((pos, c.encoding, c.data.to_vec()));
            pos = next;
        }
        Ok(out)
    }

    /// The chunk at logical `offset` of `bytes`, decompressing its frame: random access without a cache.
    pub fn read_chunk(&self, path: &Path, bytes: &[u8], offset: u32) -> Result<(u8, Vec<u8>)> {
        let i = self.frame_of(path, offset)?;
        let frame = self.decompress(path, bytes, i)?;
        let c = self.chunk_in(path, i, &frame, offset)?;
        Ok((c.encoding, c.data.to_vec()))
    }
}

/// How a [`ZstdSegmentBuilder`] writes: format version, zstd level, and the chunk-frame bytes after
/// which a zstd frame is closed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZstdParams {
    pub version: u8,
    pub level: i32,
    pub frame_target: usize,
}

impl ZstdParams {
    /// Version 2 (columnar) at `level`, with the default frame size.
    pub fn columnar(level: i32) -> Self {
        ZstdParams {
            version: ZSTD_SEGMENT_FORMAT_V2,
            level,
            frame_target: ZSTD_FRAME_TARGET_V2,
        }
    }

    /// Version 1 (chunk frames as they are) at `level`, 64 KiB frames.
    pub fn v1(level: i32) -> Self {
        ZstdParams {
            version: ZSTD_SEGMENT_FORMAT_V1,
            level,
            frame_target: ZSTD_FRAME_TARGET,
        }
    }
}

impl Default for ZstdParams {
    fn default() -> Self {
        Self::columnar(ZSTD_LEVEL_V2)
    }
}

/// Builds one compressed segment in memory-bounded steps: chunk frames go into a pending buffer, which
/// becomes a zstd frame once it reaches the frame target; [`ZstdSegmentBuilder::finish`] returns the
/// table and footer. The caller writes the header, every returned frame, then the tail, in that order.
#[derive(Debug)]
pub(crate) struct ZstdSegmentBuilder {
    pending: Vec<u8>,
    pending_start: u32,
    table: Vec<u8>,
    num_frames: u32,
    file_pos: u64,
    params: ZstdParams,
    stats: EncodeStats,
}

impl ZstdSegmentBuilder {
    pub(crate) fn new(params: ZstdParams) -> Self {
        ZstdSegmentBuilder {
            pending: Vec::with_capacity(params.frame_target.min(ZSTD_MAX_FRAME) + 1024),
            pending_start: SEGMENT_HEADER_SIZE as u32,
            table: Vec::new(),
            num_frames: 0,
            file_pos: SEGMENT_HEADER_SIZE as u64,
            params,
            stats: EncodeStats::default(),
        }
    }

    /// The 8-byte header of a compressed segment.
    pub(crate) fn header(&self) -> [u8; SEGMENT_HEADER_SIZE] {
        let mut h = [0u8; SEGMENT_HEADER_SIZE];
        h[..4].copy_from_slice(&ZSTD_SEGMENT_MAGIC.to_be_bytes());
        h[4] = self.params.version;
        h
    }

    /// Whether a chunk frame of `len` bytes would make the pending frame exceed [`ZSTD_MAX_FRAME`]
    /// even on its own.
    pub(crate) fn fits(len: usize) -> bool {
        len <= ZSTD_MAX_FRAME
    }

    /// Adds one whole chunk frame (the bytes a plain segment would hold at the next logical offset).
    /// Returns a compressed frame to write when the pending one is full.
    pub(crate) fn push(&mut self, frame_bytes: &[&[u8]]) -> std::io::Result<Option<Vec<u8>>> {
        let len: usize = frame_bytes.iter().map(|b| b.len()).sum();
        let mut out = None;
        if !self.pending.is_empty() && self.pending.len() + len > ZSTD_MAX_FRAME {
            out = self.flush()?;
        }
        for b in frame_bytes {
            self.pending.extend_from_slice(b);
        }
        if self.pending.len() >= self.params.frame_target {
            let more = self.flush()?;
            out = match (out, more) {
                (Some(mut a), Some(b)) => {
                    a.extend_from_slice(&b);
                    Some(a)
                }
                (a, b) => a.or(b),
            };
        }
        Ok(out)
    }

    /// Compresses the pending bytes into a frame (if any) and records it in the table.
    pub(crate) fn flush(&mut self) -> std::io::Result<Option<Vec<u8>>> {
        if self.pending.is_empty() {
            return Ok(None);
        }
        let logical_len = self.pending.len() as u32;
        let payload = if self.params.version == ZSTD_SEGMENT_FORMAT_V1 {
            None
        } else {
            let mut stats = EncodeStats::default();
            let mut p = columnar::encode(&self.pending, &mut stats);
            if p.len() > columnar::max_payload(self.pending.len()) {
                stats = EncodeStats {
                    raw_chunks: stats.raw_chunks + stats.decimal_chunks + stats.float_chunks,
                    ..EncodeStats::default()
                };
                p = columnar::encode_raw(&self.pending);
            }
            self.stats.decimal_chunks += stats.decimal_chunks;
            self.stats.float_chunks += stats.float_chunks;
            self.stats.raw_chunks += stats.raw_chunks;
            Some(p)
        };
        let src = payload.as_deref().unwrap_or(&self.pending);
        let payload_len = u32::try_from(src.len())
            .map_err(|_| std::io::Error::other("a columnar payload exceeds 4 GiB"))?;
        let compressed = zstd::bulk::compress(src, self.params.level)?;
        let compressed_len = u32::try_from(compressed.len())
            .map_err(|_| std::io::Error::other("a zstd frame exceeds 4 GiB"))?;
        self.table
            .extend_from_slice(&self.pending_start.to_be_bytes());
        self.table.extend_from_slice(&logical_len.to_be_bytes());
        if self.params.version != ZSTD_SEGMENT_FORMAT_V1 {
            self.table.extend_from_slice(&payload_len.to_be_bytes());
        }
        self.table.extend_from_slice(&compressed_len.to_be_bytes());
        self.table
            .extend_from_slice(&crc32c::crc32c(&compressed).to_be_bytes());
        self.num_frames += 1;
        self.file_pos += u64::from(compressed_len);
        self.pending_start = self.pending_start.saturating_add(logical_len);
        self.pending.clear();
        Ok(Some(compressed))
    }

    /// The remaining frame (if any) followed by the frame table and footer, and how the segment's chunks
    /// were stored.
    pub(crate) fn finish(mut self) -> std::io::Result<(Vec<u8>, EncodeStats)> {
        let mut out = self.flush()?.unwrap_or_default();
        let table_offset = self.file_pos;
        let crc = crc32c::crc32c(&self.table);
        out.extend_from_slice(&self.table);
        out.extend_from_slice(&table_offset.to_be_bytes());
        out.extend_from_slice(&self.num_frames.to_be_bytes());
        out.extend_from_slice(&crc.to_be_bytes());
        out.extend_from_slice(&self.pending_start.to_be_bytes());
        out.extend_from_slice(&ZSTD_SEGMENT_MAGIC.to_be_bytes());
        Ok((out, self.stats))
    }
}

/// One whole compressed segment in memory holding `chunks` in order, with the logical offset of each
/// (what the lower half of its [`super::ChunkRef`] would be). No segment cutting: everything goes into
/// one segment. For fuzzing and tests, which should not need files; [`super::ChunkWriter`] is the
/// writer blocks use.
pub fn encode_segment(
    chunks: &[RawChunk<'_>],
    params: ZstdParams,
) -> std::io::Result<(Vec<u8>, Vec<u32>)> {
    let mut b = ZstdSegmentBuilder::new(params);
    let mut out = b.header().to_vec();
    let mut offsets = Vec::with_capacity(chunks.len());
    let mut pos = SEGMENT_HEADER_SIZE as u64;
    for c in chunks {
        let len = u32::try_from(c.data.len())
            .map_err(|_| std::io::Error::other("chunk exceeds the 32-bit length field"))?;
        let mut len_field = Vec::with_capacity(5);
        let mut v = len;
        while v >= 0x80 {
            len_field.push(v as u8 | 0x80);
            v >>= 7;
        }
        len_field.push(v as u8);
        let frame_len = len_field.len() + c.data.len() + super::CHUNK_FRAME_FIXED_SIZE;
        let offset = u32::try_from(pos)
            .ok()
            .filter(|_| ZstdSegmentBuilder::fits(frame_len))
            .ok_or_else(|| std::io::Error::other("chunks exceed what one segment can address"))?;
        let crc = crc32c::crc32c_append(crc32c::crc32c(&[c.encoding]), c.data).to_be_bytes();
        if let Some(f) = b.push(&[&len_field, &[c.encoding], c.data, &crc])? {
            out.extend_from_slice(&f);
        }
        offsets.push(offset);
        pos += frame_len as u64;
    }
    out.extend_from_slice(&b.finish()?.0);
    Ok((out, offsets))
}
