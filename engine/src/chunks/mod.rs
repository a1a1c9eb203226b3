//! Chunk segment files of a persisted block: `<block>/chunks/000001`, `000002`, …
//!
//! A block stores the encoded chunks of all its series back to back in numbered segment files of at most
//! [`DEFAULT_SEGMENT_SIZE`] bytes, each chunk framed with its length, its encoding byte and a CRC-32C
//! (layout in `docs/format/chunk_segments.md`, identical to Prometheus'). The block index names a chunk
//! by a [`ChunkRef`]: which segment, and where in it.
//!
//! This module owns that framing: [`ChunkWriter`] appends chunks and cuts segments, [`ChunkReader`] maps
//! the segments and returns a chunk's bytes by reference, [`SegmentIter`] walks one segment from start
//! to end (for tools that have no index, and for repair). It does not own what is inside a chunk (that is
//! [`crate::chunkenc`]), nor which series a chunk belongs to (the block index), nor the head's own
//! memory-mapped chunk files (`chunks_head/`), which use a different framing.
//!
//! Blocks written by compaction may instead hold Ember's own zstd-compressed segments (an option, off
//! by default; [`compressed`]): same chunk frames at the same logical offsets, stored in zstd frames,
//! since version 2 as columns of samples ([`columnar`]) that are re-encoded to the identical chunks.
//! [`ChunkReader`] reads both kinds; Prometheus reads only the plain one.

pub mod columnar;
pub mod compressed;
pub(crate) mod decoded_cache;
pub(crate) mod reader;
mod segment;
mod writer;

#[cfg(test)]
pub(crate) mod tests;

pub use columnar::EncodeStats;
pub use compressed::{ZstdParams, ZstdSegment, is_zstd_segment};
pub use decoded_cache::{DecodedCacheStats, DecodedChunkCache};
pub use reader::{ChunkBuf, ChunkReader};
pub use segment::{RawChunk, SegmentIter, read_chunk_at};
pub use writer::ChunkWriter;

use std::fmt;
use std::path::{Path, PathBuf};

/// The magic number that opens every segment file, stored big-endian.
pub const SEGMENT_MAGIC: u32 = 0x85BD_40DD;
/// The only segment format version there is.
pub const SEGMENT_FORMAT_V1: u8 = 1;
/// Magic (4 bytes), version (1 byte), zero padding (3 bytes).
pub const SEGMENT_HEADER_SIZE: usize = 8;
/// Segment size Prometheus cuts at; a single chunk larger than what is left still goes in whole.
pub const DEFAULT_SEGMENT_SIZE: u64 = 512 * 1024 * 1024;
/// The chunk length field is a uvarint of at most 5 bytes (a 32-bit length), as in Prometheus.
pub const MAX_CHUNK_LEN_FIELD_SIZE: usize = 5;
/// Encoding byte plus the 4-byte CRC-32C around a chunk's data.
pub(crate) const CHUNK_FRAME_FIXED_SIZE: usize = 1 + 4;

/// Where a chunk lives inside a block: the zero-based position of its segment file among the block's
/// segments (file `000001` is 0) in the upper 32 bits, the byte offset of the chunk's length field within
/// that file in the lower 32 bits. This is Prometheus' `BlockChunkRef`, the value the block index stores.
#[derive(Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ChunkRef(pub u64);

impl ChunkRef {
    /// The reference to the chunk at byte `offset` of the segment at position `segment`.
    pub const fn new(segment: u32, offset: u32) -> Self {
        ChunkRef(((segment as u64) << 32) | offset as u64)
    }

    /// Zero-based position of the segment file (file `000001` is 0).
    pub const fn segment(self) -> u32 {
        (self.0 >> 32) as u32
    }

    /// Byte offset of the chunk's length field within its segment file.
    pub const fn offset(self) -> u32 {
        self.0 as u32
    }
}

impl fmt::Debug for ChunkRef {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "ChunkRef({}:{})", self.segment(), self.offset())
    }
}

impl From<u64> for ChunkRef {
    fn from(v: u64) -> Self {
        ChunkRef(v)
    }
}

impl From<ChunkRef> for u64 {
    fn from(r: ChunkRef) -> Self {
        r.0
    }
}

/// The path of the segment at zero-based position `index` in `dir`: six digits, counted from 1.
pub fn segment_path(dir: &Path, index: u32) -> PathBuf {
    dir.join(format!("{:06}", u64::from(index) + 1))
}

/// The segment number a file name stands for, if it is one: Prometheus takes every name that parses as
/// a decimal `u64` (and ignores the rest, e.g. leftover temporary files).
pub(crate) fn segment_number(name: &std::ffi::OsStr) -> Option<u64> {
    let name = name.to_str()?;
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}
