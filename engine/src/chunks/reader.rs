//! [`ChunkReader`]: the segment files of one block, memory-mapped, read by [`ChunkRef`]; plain
//! (Prometheus) segments are read in place, Ember's zstd segments through a small cache of decompressed
//! frames.

use std::borrow::Cow;
use std::fs::{self, File};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use memmap2::Mmap;
use parking_lot::Mutex;

use super::compressed::{ZstdSegment, is_zstd_segment};
use super::decoded_cache::{DecodedChunkCache, next_reader_number};
use super::segment::{check_header, corrupt, read_frame};
use super::{ChunkRef, RawChunk, SegmentIter, segment_number};
use crate::block::fileutil::io_err;
use crate::{Error, Result};

/// Decompressed frames kept per reader. Series are laid out one after another, so a query walking a
/// block's series in order reads each frame once; a few entries also absorb interleaved queries.
const FRAME_CACHE_ENTRIES: usize = 8;

/// A decompressed frame keyed by (segment, frame index).
type CachedFrame = ((u32, usize), Arc<[u8]>);

#[derive(Debug)]
struct Segment {
    path: PathBuf,
    map: SegmentBytes,
    /// The frame table, for an Ember zstd segment.
    zstd: Option<ZstdSegment>,
}

/// A segment's contents: mapped from its file, or handed over in memory
/// ([`ChunkReader::from_segment_bytes`], for fuzzing and tools).
#[derive(Debug)]
enum SegmentBytes {
    Mapped(Mmap),
    Owned(Vec<u8>),
}

impl std::ops::Deref for SegmentBytes {
    type Target = [u8];
    fn deref(&self) -> &[u8] {
        match self {
            SegmentBytes::Mapped(m) => m,
            SegmentBytes::Owned(v) => v,
        }
    }
}

/// A chunk read through [`ChunkReader::read`]: borrowed from a plain segment's mapping, or copied out
/// of a decompressed frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChunkBuf<'a> {
    pub encoding: u8,
    pub data: Cow<'a, [u8]>,
}

/// Where a chunk's bytes are, for [`crate::block::Block`].
pub(crate) enum ChunkPos {
    /// `len` bytes at `start` of the mapped segment.
    Mapped { encoding: u8, start: u32, len: u32 },
    /// A copy, taken from a decompressed frame.
    Owned { encoding: u8, data: Arc<[u8]> },
}

/// Read access to the chunks of one block (`<block>/chunks/`).
///
/// Segments are mapped read-only when the reader is opened and their headers checked; a chunk's frame is
/// checked (bounds, length field, CRC-32C) each time it is read. Block files are never modified after
/// the block is written, which is what makes mapping them sound (as in Prometheus).
#[derive(Debug)]
pub struct ChunkReader {
    dir: PathBuf,
    segments: Vec<Segment>,
    /// Recently decompressed frames by (segment, frame), most recent last.
    frames: Mutex<Vec<CachedFrame>>,
    /// Process-unique number naming this reader's chunks in the decoded-chunk cache.
    number: u64,
    /// Where queries keep this block's decoded chunks; unset for readers outside a [`crate::Db`]
    /// (tools, tests), which then decode every time.
    decoded: std::sync::OnceLock<Arc<DecodedChunkCache>>,
}

impl ChunkReader {
    /// Lets queries keep this reader's decoded chunks in `cache` (the first cache set stays).
    pub(crate) fn use_decoded_cache(&self, cache: &Arc<DecodedChunkCache>) {
        if self.decoded.get().is_none() {
            let _ = self.decoded.set(cache.clone());
        }
    }

    /// The decoded-chunk cache and the key of the chunk at `start` of `segment`, if this reader has a
    /// cache.
    pub(crate) fn decoded_cache(
        &self,
        segment: u32,
        start: u32,
    ) -> Option<(&DecodedChunkCache, super::decoded_cache::Key)> {
        Some((self.decoded.get()?, (self.number, segment, start)))
    }

    /// Opens every segment file in `dir`. Segment files are the entries whose names are decimal numbers;
    /// they must be numbered 1, 2, … without gaps, since a reference counts positions, and a missing
    /// file would silently shift every later reference. An empty directory is a block without chunks.
    pub fn open(dir: impl AsRef<Path>) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        let mut numbered = Vec::new();
        for entry in fs::read_dir(&dir).map_err(|e| io_err(&dir, e))? {
            let entry = entry.map_err(|e| io_err(&dir, e))?;
            if let Some(n) = segment_number(&entry.file_name()) {
                numbered.push((n, entry.path()));
            }
        }
        numbered.sort();
        let mut segments = Vec::with_capacity(numbered.len());
        for (i, (n, path)) in numbered.into_iter().enumerate() {
            if n != i as u64 + 1 {
                return Err(Error::Corruption {
                    path: dir,
                    reason: format!(
                        "segment files are not numbered consecutively from 1: found {} where {:06} was expected",
                        path.file_name().unwrap_or_default().to_string_lossy(),
                        i + 1
                    ),
                });
            }
            if u32::try_from(i).is_err() {
                return Err(Error::Corruption {
                    path: dir,
                    reason: "more segment files than a chunk reference can number".to_string(),
                });
            }
            segments.push(open_segment(path)?);
        }
        Ok(ChunkReader::with_segments(dir, segments))
    }

    fn with_segments(dir: PathBuf, segments: Vec<Segment>) -> Self {
        ChunkReader {
            dir,
            segments,
            frames: Mutex::new(Vec::new()),
            number: next_reader_number(),
            decoded: std::sync::OnceLock::new(),
        }
    }

    /// A reader over segments held in memory, in order (the first is position 0), with the same checks
    /// as [`ChunkReader::open`] makes on files; `dir` and each segment's path only name things in
    /// errors. Lets a fuzzer or a tool read segment bytes without writing files.
    pub fn from_segment_bytes(
        dir: impl AsRef<Path>,
        segments: Vec<(PathBuf, Vec<u8>)>,
    ) -> Result<Self> {
        let dir = dir.as_ref().to_path_buf();
        if u32::try_from(segments.len()).is_err() {
            return Err(Error::Corruption {
                path: dir,
                reason: "more segments than a chunk reference can number".to_string(),
            });
        }
        let segments = segments
            .into_iter()
            .map(|(path, bytes)| segment_from(path, SegmentBytes::Owned(bytes)))
            .collect::<Result<Vec<_>>>()?;
        Ok(ChunkReader::with_segments(dir, segments))
    }

    /// The chunk at `r` of a plain segment, borrowed from the mapping. Fails, naming the file and the
    /// chunk's offset, if the frame runs past the end of the segment or its checksum does not match, and
    /// for a zstd segment, whose chunks cannot be borrowed ([`ChunkReader::read`] reads both kinds).
    pub fn chunk(&self, r: ChunkRef) -> Result<RawChunk<'_>> {
        let seg = self.segment(r)?;
        if seg.zstd.is_some() {
            return Err(self.compressed(r));
        }
        read_frame(&seg.path, &seg.map, r.offset() as usize).map(|(c, _)| c)
    }

    /// The chunk at `r`, from a plain or a zstd segment. Errors name the file and the offset of the
    /// damaged chunk frame (plain) or zstd frame (compressed).
    pub fn read(&self, r: ChunkRef) -> Result<ChunkBuf<'_>> {
        Ok(match self.locate(r)? {
            ChunkPos::Mapped {
                encoding,
                start,
                len,
            } => ChunkBuf {
                encoding,
                data: Cow::Borrowed(
                    self.segment_bytes(r.segment())
                        .and_then(|b| b.get(start as usize..(start as usize + len as usize)))
                        .unwrap_or_default(),
                ),
            },
            ChunkPos::Owned { encoding, data } => ChunkBuf {
                encoding,
                data: Cow::Owned(data.to_vec()),
            },
        })
    }

    /// Where the chunk at `r` is, after the checks of [`ChunkReader::read`].
    pub(crate) fn locate(&self, r: ChunkRef) -> Result<ChunkPos> {
        let seg = self.segment(r)?;
        let Some(z) = &seg.zstd else {
            let (encoding, start, len) = self.chunk_position(r)?;
            return Ok(ChunkPos::Mapped {
                encoding,
                start,
                len,
            });
        };
        let i = z.frame_of(&seg.path, r.offset())?;
        let frame = self.frame(r.segment(), seg, z, i)?;
        let c = z.chunk_in(&seg.path, i, &frame, r.offset())?;
        Ok(ChunkPos::Owned {
            encoding: c.encoding,
            data: Arc::from(c.data),
        })
    }

    /// Frame `i` of compressed segment `index`, decompressed, from the cache when it is there.
    fn frame(&self, index: u32, seg: &Segment, z: &ZstdSegment, i: usize) -> Result<Arc<[u8]>> {
        {
            let mut cache = self.frames.lock();
            if let Some(p) = cache.iter().position(|(k, _)| *k == (index, i)) {
                let hit = cache.remove(p);
                let frame = hit.1.clone();
                cache.push(hit);
                return Ok(frame);
            }
        }
        // Decompressed outside the lock: other readers of the block need not wait for it.
        let frame: Arc<[u8]> = z.decompress(&seg.path, &seg.map, i)?.into();
        let mut cache = self.frames.lock();
        if cache.len() >= FRAME_CACHE_ENTRIES {
            cache.remove(0);
        }
        cache.push(((index, i), frame.clone()));
        Ok(frame)
    }

    /// The frame table of segment `index`, with the segment's bytes and path, if it is compressed.
    pub fn zstd_segment(&self, index: u32) -> Option<(&ZstdSegment, &[u8], &Path)> {
        let s = self.segments.get(index as usize)?;
        Some((s.zstd.as_ref()?, &s.map[..], &s.path))
    }

    fn compressed(&self, r: ChunkRef) -> Error {
        Error::InvalidChunkRef {
            chunk_ref: r.0,
            dir: self.dir.clone(),
            reason: format!(
                "segment {} is zstd-compressed: its chunks cannot be borrowed (use ChunkReader::read)",
                r.segment()
            ),
        }
    }

    /// The whole mapped segment at zero-based position `index` (header included).
    #[inline]
    pub(crate) fn segment_bytes(&self, index: u32) -> Option<&[u8]> {
        self.segments.get(index as usize).map(|s| &s.map[..])
    }

    /// The chunk at `r` as `(encoding, start, len)`: where its data lies in the segment's bytes, after
    /// the same checks as [`ChunkReader::chunk`]. Lets a caller keep the position instead of a borrow.
    pub(crate) fn chunk_position(&self, r: ChunkRef) -> Result<(u8, u32, u32)> {
        let seg = self.segment(r)?;
        if seg.zstd.is_some() {
            return Err(self.compressed(r));
        }
        let (c, _) = read_frame(&seg.path, &seg.map, r.offset() as usize)?;
        // The data is a sub-slice of the map, so the difference of the pointers is its offset.
        let start = c.data.as_ptr() as usize - seg.map.as_ptr() as usize;
        match (u32::try_from(start), u32::try_from(c.data.len())) {
            (Ok(start), Ok(len)) => Ok((c.encoding, start, len)),
            _ => Err(corrupt(
                &seg.path,
                r.offset() as usize,
                "chunk data lies beyond the 4 GiB a position can address",
            )),
        }
    }

    /// Number of segment files.
    pub fn num_segments(&self) -> usize {
        self.segments.len()
    }

    /// Path of the segment at zero-based position `index`.
    pub fn segment_path(&self, index: u32) -> Option<&Path> {
        self.segments.get(index as usize).map(|s| s.path.as_path())
    }

    /// Total bytes of all segment files.
    pub fn size(&self) -> u64 {
        self.segments.iter().map(|s| s.map.len() as u64).sum()
    }

    /// Walks the chunks of the segment at `index` in file order (see [`SegmentIter`]).
    /// Plain segments only: a zstd segment's chunks cannot be borrowed.
    pub fn segment_iter(&self, index: u32) -> Result<SegmentIter<'_>> {
        let seg = self.segment(ChunkRef::new(index, 0))?;
        if seg.zstd.is_some() {
            return Err(self.compressed(ChunkRef::new(index, 0)));
        }
        SegmentIter::new(index, &seg.path, &seg.map)
    }

    /// Every chunk of every segment in file order, stopping after the first damaged frame.
    pub fn iter(&self) -> impl Iterator<Item = Result<(ChunkRef, RawChunk<'_>)>> + '_ {
        let mut failed = false;
        (0..self.segments.len() as u32)
            .flat_map(move |i| match self.segment_iter(i) {
                Ok(it) => EitherIter::Segment(it),
                Err(e) => EitherIter::Failed(Some(e)),
            })
            .take_while(move |r| {
                let keep = !failed;
                failed |= r.is_err();
                keep
            })
    }

    fn segment(&self, r: ChunkRef) -> Result<&Segment> {
        self.segments
            .get(r.segment() as usize)
            .ok_or_else(|| Error::InvalidChunkRef {
                chunk_ref: r.0,
                dir: self.dir.clone(),
                reason: format!(
                    "segment {} does not exist ({} segment files)",
                    r.segment(),
                    self.segments.len()
                ),
            })
    }
}

enum EitherIter<'a> {
    Segment(SegmentIter<'a>),
    Failed(Option<Error>),
}

impl<'a> Iterator for EitherIter<'a> {
    type Item = Result<(ChunkRef, RawChunk<'a>)>;
    fn next(&mut self) -> Option<Self::Item> {
        match self {
            EitherIter::Segment(it) => it.next(),
            EitherIter::Failed(e) => e.take().map(Err),
        }
    }
}

fn open_segment(path: PathBuf) -> Result<Segment> {
    let file = File::open(&path).map_err(|e| io_err(&path, e))?;
    let len = file.metadata().map_err(|e| io_err(&path, e))?.len();
    if len < super::SEGMENT_HEADER_SIZE as u64 {
        // Refused before mapping (mmap(2) rejects an empty file); reading names the actual length.
        let bytes = fs::read(&path).map_err(|e| io_err(&path, e))?;
        check_header(&path, &bytes)?;
        return Err(corrupt(&path, 0, "segment shorter than its header"));
    }
    // SAFETY: the mapping is read-only and block files are immutable once written (they are written in a
    // temporary directory and renamed into place). Another process truncating the file underneath us
    // would be outside that contract, as it is for Prometheus.
    let map = unsafe { Mmap::map(&file) }.map_err(|e| io_err(&path, e))?;
    segment_from(path, SegmentBytes::Mapped(map))
}

/// Checks the header (and for a zstd segment the frame table) of `map`, the contents of `path`.
fn segment_from(path: PathBuf, map: SegmentBytes) -> Result<Segment> {
    if is_zstd_segment(&map) {
        let zstd = Some(ZstdSegment::parse(&path, &map)?);
        return Ok(Segment { path, map, zstd });
    }
    check_header(&path, &map)?;
    Ok(Segment {
        path,
        map,
        zstd: None,
    })
}
