//! [`ChunkReader`]: the segment files of one block, memory-mapped, read by [`ChunkRef`].

use std::fs::{self, File};
use std::path::{Path, PathBuf};

use memmap2::Mmap;

use super::segment::{check_header, corrupt, read_frame};
use super::{ChunkRef, RawChunk, SegmentIter, segment_number};
use crate::block::fileutil::io_err;
use crate::{Error, Result};

#[derive(Debug)]
struct Segment {
    path: PathBuf,
    map: Mmap,
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
}

impl ChunkReader {
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
        Ok(ChunkReader { dir, segments })
    }

    /// The chunk at `r`, borrowed from the mapped segment. Fails, naming the file and the chunk's offset,
    /// if the frame runs past the end of the segment or its checksum does not match.
    pub fn chunk(&self, r: ChunkRef) -> Result<RawChunk<'_>> {
        let seg = self.segment(r)?;
        read_frame(&seg.path, &seg.map, r.offset() as usize).map(|(c, _)| c)
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
    pub fn segment_iter(&self, index: u32) -> Result<SegmentIter<'_>> {
        let seg = self.segment(ChunkRef::new(index, 0))?;
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
    check_header(&path, &map)?;
    Ok(Segment { path, map })
}
