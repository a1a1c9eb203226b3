//! [`ChunkWriter`]: appends chunks to a block's segment files and returns their references.
//!
//! Segments are cut by Prometheus' rule (see [`plan_cuts`]) so that, given the same chunks in the same
//! calls, Ember lays them out in the same files at the same offsets. Durability: a new segment's
//! directory entry is fsynced when the segment is created, a segment's contents when it is closed, and
//! [`ChunkWriter::finish`] fsyncs the last one and the directory. A writer dropped without `finish`
//! leaves whatever was written unsynced; blocks are written in a temporary directory, so such leftovers
//! are never read.

use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::{Path, PathBuf};

use super::columnar::EncodeStats;
use super::compressed::{ZstdParams, ZstdSegmentBuilder};
use super::{
    CHUNK_FRAME_FIXED_SIZE, ChunkRef, DEFAULT_SEGMENT_SIZE, MAX_CHUNK_LEN_FIELD_SIZE, RawChunk,
    SEGMENT_FORMAT_V1, SEGMENT_HEADER_SIZE, SEGMENT_MAGIC, segment_number, segment_path,
};
use crate::block::fileutil::{io_err, sync_dir};
use crate::{Error, Result};

/// Writes buffered in memory before they reach the file; chunks are small (about 1 KiB) and a block
/// holds many, so this keeps system calls per chunk near zero.
const WRITE_BUFFER: usize = 1 << 20;

/// Writes the `chunks/` directory of one block.
#[derive(Debug)]
pub struct ChunkWriter {
    dir: PathBuf,
    segment_size: u64,
    segments: Vec<PathBuf>,
    tail: Option<BufWriter<File>>,
    /// Bytes in the current segment; 0 before the first segment is created. For compressed segments,
    /// the logical length (what the segment would hold uncompressed), which is what references and
    /// segment cutting count.
    pos: u64,
    /// Set when writing Ember's compressed segments instead of Prometheus' plain ones.
    zstd_params: Option<ZstdParams>,
    /// Column statistics of the compressed segments finished so far.
    zstd_stats: EncodeStats,
    /// The frames of the current compressed segment.
    zstd: Option<ZstdSegmentBuilder>,
}

impl ChunkWriter {
    /// A writer into `dir` (created if missing) that cuts segments at [`DEFAULT_SEGMENT_SIZE`].
    pub fn create(dir: impl AsRef<Path>) -> Result<Self> {
        Self::with_segment_size(dir, DEFAULT_SEGMENT_SIZE)
    }

    /// A writer that cuts segments at `segment_size` bytes (tests use small sizes to exercise cutting).
    /// The size must leave room for the header and fit a chunk reference's 32-bit offset. `dir` must not
    /// hold segment files yet: references count segments from the first file this writer creates.
    pub fn with_segment_size(dir: impl AsRef<Path>, segment_size: u64) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let refuse = |reason: String| Error::ChunkWriteRefused {
            dir: dir.clone(),
            reason,
        };
        if segment_size <= SEGMENT_HEADER_SIZE as u64 || segment_size > u64::from(u32::MAX) {
            return Err(refuse(format!(
                "segment size {segment_size} is outside {}..={}",
                SEGMENT_HEADER_SIZE + 1,
                u32::MAX
            )));
        }
        fs::create_dir_all(&dir).map_err(|e| io_err(&dir, e))?;
        for entry in fs::read_dir(&dir).map_err(|e| io_err(&dir, e))? {
            let entry = entry.map_err(|e| io_err(&dir, e))?;
            if segment_number(&entry.file_name()).is_some() {
                return Err(refuse(format!(
                    "directory already holds segment file {}",
                    entry.file_name().to_string_lossy()
                )));
            }
        }
        Ok(ChunkWriter {
            dir,
            segment_size,
            segments: Vec::new(),
            tail: None,
            pos: 0,
            zstd_params: None,
            zstd_stats: EncodeStats::default(),
            zstd: None,
        })
    }

    /// Writes Ember's zstd-compressed segments (`docs/format/chunk_segments.md`) at `level` instead of
    /// Prometheus' plain ones. References and segment cuts are the same as without compression. Takes
    /// effect from the next segment, so call it before the first chunk.
    pub fn with_zstd(self, level: i32) -> Self {
        self.with_zstd_params(ZstdParams::columnar(level))
    }

    /// Ember's zstd segments with the default parameters (version 2, columnar).
    pub fn with_default_zstd(self) -> Self {
        self.with_zstd_params(ZstdParams::default())
    }

    /// [`ChunkWriter::with_zstd`] with every parameter chosen: format version (1 keeps chunk frames as
    /// they are, 2 stores them as columns), zstd level and frame size. For tests and measurements.
    pub fn with_zstd_params(mut self, params: ZstdParams) -> Self {
        self.zstd_params = Some(params);
        self
    }

    /// Appends one chunk and returns its reference.
    pub fn write_chunk(&mut self, encoding: u8, data: &[u8]) -> Result<ChunkRef> {
        let refs = self.write_chunks(&[RawChunk { encoding, data }])?;
        Ok(refs.first().copied().unwrap_or_default())
    }

    /// Appends the chunks of one series and returns their references, in order. A call's chunks stay in
    /// one segment when they fit; Prometheus' writer takes a series' chunks per call the same way.
    pub fn write_chunks(&mut self, chunks: &[RawChunk<'_>]) -> Result<Vec<ChunkRef>> {
        for c in chunks {
            if u32::try_from(c.data.len()).is_err() {
                return Err(Error::ChunkWriteRefused {
                    dir: self.dir.clone(),
                    reason: format!(
                        "chunk of {} bytes exceeds the 32-bit length field",
                        c.data.len()
                    ),
                });
            }
        }
        let cuts = plan_cuts(
            self.segment_size,
            self.pos,
            chunks.iter().map(|c| c.data.len() as u64),
        );
        if self.pos == 0 {
            self.cut()?;
        }
        let mut refs = Vec::with_capacity(chunks.len());
        for (c, cut) in chunks.iter().zip(cuts) {
            if cut {
                self.cut()?;
            }
            refs.push(self.append(c)?);
        }
        Ok(refs)
    }

    /// Bytes written to the current segment so far (0 before the first chunk).
    pub fn segment_len(&self) -> u64 {
        self.pos
    }

    /// Flushes and fsyncs the last segment and the directory; returns the segment files written.
    pub fn finish(self) -> Result<Vec<PathBuf>> {
        self.finish_with_stats().map(|(files, _)| files)
    }

    /// [`ChunkWriter::finish`], also returning how the chunks of compressed segments were stored.
    pub fn finish_with_stats(mut self) -> Result<(Vec<PathBuf>, EncodeStats)> {
        self.finish_tail()?;
        sync_dir(&self.dir)?;
        Ok((std::mem::take(&mut self.segments), self.zstd_stats))
    }

    fn append(&mut self, c: &RawChunk<'_>) -> Result<ChunkRef> {
        let segment = self
            .segments
            .len()
            .checked_sub(1)
            .and_then(|i| u32::try_from(i).ok())
            .ok_or_else(|| self.too_many())?;
        let offset = u32::try_from(self.pos).map_err(|_| Error::ChunkWriteRefused {
            dir: self.dir.clone(),
            reason: format!("segment offset {} does not fit a chunk reference", self.pos),
        })?;
        let mut len_field = [0u8; MAX_CHUNK_LEN_FIELD_SIZE];
        let n = put_uvarint(&mut len_field, c.data.len() as u32);
        let crc = crc32c::crc32c_append(crc32c::crc32c(&[c.encoding]), c.data);
        let path = self.segments.last().cloned().unwrap_or_default();
        let w = self.tail.as_mut().ok_or_else(|| io_err(&path, closed()))?;
        let len_field = len_field.get(..n).unwrap_or_default();
        if let Some(z) = self.zstd.as_mut() {
            let frame_len = n + c.data.len() + CHUNK_FRAME_FIXED_SIZE;
            if !ZstdSegmentBuilder::fits(frame_len) {
                return Err(Error::ChunkWriteRefused {
                    dir: self.dir.clone(),
                    reason: format!(
                        "chunk of {} bytes is larger than a zstd frame may be",
                        c.data.len()
                    ),
                });
            }
            let crc = crc.to_be_bytes();
            if let Some(frame) = z
                .push(&[len_field, &[c.encoding], c.data, &crc])
                .map_err(|e| io_err(&path, e))?
            {
                w.write_all(&frame).map_err(|e| io_err(&path, e))?;
            }
        } else {
            (|| {
                w.write_all(len_field)?;
                w.write_all(&[c.encoding])?;
                w.write_all(c.data)?;
                w.write_all(&crc.to_be_bytes())
            })()
            .map_err(|e| io_err(&path, e))?;
        }
        self.pos += (n + c.data.len() + CHUNK_FRAME_FIXED_SIZE) as u64;
        Ok(ChunkRef::new(segment, offset))
    }

    /// Closes the current segment (if any) and starts the next one with its header.
    fn cut(&mut self) -> Result<()> {
        self.finish_tail()?;
        let index = u32::try_from(self.segments.len()).map_err(|_| self.too_many())?;
        let path = segment_path(&self.dir, index);
        let file = File::options()
            .write(true)
            .create_new(true)
            .open(&path)
            .map_err(|e| io_err(&path, e))?;
        // The new name must survive a crash before anything refers to data in it.
        sync_dir(&self.dir)?;
        let mut w = BufWriter::with_capacity(WRITE_BUFFER, file);
        let mut header = [0u8; SEGMENT_HEADER_SIZE];
        header[..4].copy_from_slice(&SEGMENT_MAGIC.to_be_bytes());
        header[4] = SEGMENT_FORMAT_V1;
        if let Some(params) = self.zstd_params {
            let z = ZstdSegmentBuilder::new(params);
            header = z.header();
            self.zstd = Some(z);
        }
        w.write_all(&header).map_err(|e| io_err(&path, e))?;
        self.segments.push(path);
        self.tail = Some(w);
        self.pos = SEGMENT_HEADER_SIZE as u64;
        Ok(())
    }

    fn finish_tail(&mut self) -> Result<()> {
        let Some(mut w) = self.tail.take() else {
            return Ok(());
        };
        let path = self.segments.last().cloned().unwrap_or_default();
        if let Some(z) = self.zstd.take() {
            let (tail, t) = z.finish().map_err(|e| io_err(&path, e))?;
            self.zstd_stats.decimal_chunks += t.decimal_chunks;
            self.zstd_stats.float_chunks += t.float_chunks;
            self.zstd_stats.raw_chunks += t.raw_chunks;
            w.write_all(&tail).map_err(|e| io_err(&path, e))?;
        }
        let file = w.into_inner().map_err(|e| io_err(&path, e.into_error()))?;
        file.sync_all().map_err(|e| io_err(&path, e))
    }

    fn too_many(&self) -> Error {
        Error::ChunkWriteRefused {
            dir: self.dir.clone(),
            reason: "more segments than a chunk reference can number".to_string(),
        }
    }
}

/// For each chunk of one write call (given by data length), whether a new segment is cut before it.
/// `pos` is the current segment's length at the start of the call (0: no segment yet; the caller cuts
/// the first one regardless).
///
/// This is Prometheus' rule, including its estimate of every length field at the maximum 5 bytes:
/// the chunks of a call are grouped into runs that fit a segment; the first run also counts what the
/// current segment already holds, later runs start from an empty segment. A run always takes at least
/// one chunk, so a chunk larger than a segment gets a segment of its own, whatever its size.
pub(crate) fn plan_cuts(
    segment_size: u64,
    pos: u64,
    data_lens: impl IntoIterator<Item = u64>,
) -> Vec<bool> {
    let header = SEGMENT_HEADER_SIZE as u64;
    let mut cuts = Vec::new();
    let mut run = 0u64;
    let mut first_run = true;
    for (i, len) in data_lens.into_iter().enumerate() {
        let size = len.saturating_add((MAX_CHUNK_LEN_FIELD_SIZE + CHUNK_FRAME_FIXED_SIZE) as u64);
        run = run.saturating_add(size);
        let mut cut = i != 0 && run.saturating_add(header) > segment_size;
        if first_run && pos > header {
            cut = run.saturating_add(pos) > segment_size;
            if cut {
                first_run = false;
            }
        }
        if cut {
            run = size;
        }
        cuts.push(cut);
    }
    cuts
}

/// Little-endian base-128 varint (Go's `binary.PutUvarint`); returns the bytes used.
fn put_uvarint(buf: &mut [u8; MAX_CHUNK_LEN_FIELD_SIZE], mut v: u32) -> usize {
    let mut i = 0;
    while v >= 0x80 {
        buf[i] = (v as u8) | 0x80;
        v >>= 7;
        i += 1;
    }
    buf[i] = v as u8;
    i + 1
}

fn closed() -> std::io::Error {
    std::io::Error::other("segment is closed")
}
