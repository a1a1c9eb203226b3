//! Parsing of segment bytes: the header, one chunk frame at an offset, and a walk over all frames.
//!
//! Everything here works on a byte slice (a memory map, or fuzz input) and never panics on arbitrary
//! bytes; errors carry the segment's path and the byte offset of the frame that failed, which is also
//! where a repair would cut. Opening files and resolving references is [`super::reader`]'s job.
#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

use std::path::Path;

use super::{
    CHUNK_FRAME_FIXED_SIZE, ChunkRef, MAX_CHUNK_LEN_FIELD_SIZE, SEGMENT_FORMAT_V1,
    SEGMENT_HEADER_SIZE, SEGMENT_MAGIC,
};
use crate::{Error, Result};

/// One chunk as stored in a segment: its encoding byte ([`crate::chunkenc::ENCODING_XOR`] is 1) and its
/// data, borrowed from the segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RawChunk<'a> {
    pub encoding: u8,
    pub data: &'a [u8],
}

pub(crate) fn corrupt(path: &Path, offset: usize, reason: impl Into<String>) -> Error {
    Error::CorruptFile {
        path: path.to_path_buf(),
        offset: offset as u64,
        reason: reason.into(),
    }
}

/// Checks the 8-byte header: magic and version. The 3 padding bytes are not checked (Prometheus does not
/// check them either).
pub(crate) fn check_header(path: &Path, bytes: &[u8]) -> Result<()> {
    let Some(header) = bytes.first_chunk::<SEGMENT_HEADER_SIZE>() else {
        return Err(corrupt(
            path,
            0,
            format!(
                "segment of {} bytes is shorter than its {SEGMENT_HEADER_SIZE}-byte header",
                bytes.len()
            ),
        ));
    };
    let [m0, m1, m2, m3, version, ..] = *header;
    let magic = u32::from_be_bytes([m0, m1, m2, m3]);
    if magic != SEGMENT_MAGIC {
        return Err(corrupt(
            path,
            0,
            format!("invalid segment magic {magic:#010x}, want {SEGMENT_MAGIC:#010x}"),
        ));
    }
    if version != SEGMENT_FORMAT_V1 {
        return Err(corrupt(
            path,
            4,
            format!("unsupported segment format version {version}"),
        ));
    }
    Ok(())
}

/// Reads the frame starting at `offset`: the chunk and the offset just past its checksum. Verifies the
/// CRC-32C of encoding byte and data. Every error names `offset` (the frame's start), whichever field
/// was at fault, since the whole frame is unusable.
pub(crate) fn read_frame<'a>(
    path: &Path,
    bytes: &'a [u8],
    offset: usize,
) -> Result<(RawChunk<'a>, usize)> {
    if offset < SEGMENT_HEADER_SIZE {
        return Err(corrupt(
            path,
            offset,
            format!(
                "chunk offset {offset} lies inside the {SEGMENT_HEADER_SIZE}-byte segment header"
            ),
        ));
    }
    parse_frame(bytes, offset).map_err(|reason| corrupt(path, offset, reason))
}

/// The frame starting at `offset` of `bytes` (a whole segment, or a decompressed run of frames): the
/// chunk and the offset just past its checksum, or why the frame is unusable.
pub(crate) fn parse_frame(
    bytes: &[u8],
    offset: usize,
) -> std::result::Result<(RawChunk<'_>, usize), String> {
    let rest = bytes.get(offset..).ok_or_else(|| {
        format!(
            "chunk offset is past the end of the segment ({} bytes)",
            bytes.len()
        )
    })?;

    // uvarint length, at most 5 bytes (Go's MaxVarintLen32).
    let mut len: u64 = 0;
    let mut field = 0;
    loop {
        let Some(&b) = rest.get(field) else {
            return Err(format!(
                "chunk length field runs past the end of the segment ({} bytes)",
                bytes.len()
            ));
        };
        len |= u64::from(b & 0x7f) << (7 * field);
        field += 1;
        if b & 0x80 == 0 {
            break;
        }
        if field == MAX_CHUNK_LEN_FIELD_SIZE {
            return Err(format!(
                "chunk length field is longer than {MAX_CHUNK_LEN_FIELD_SIZE} bytes"
            ));
        }
    }

    let frame_len = usize::try_from(len)
        .ok()
        .and_then(|l| l.checked_add(field + CHUNK_FRAME_FIXED_SIZE));
    let Some(frame) = frame_len.and_then(|n| rest.get(..n)) else {
        return Err(format!(
            "chunk of {len} data bytes runs past the end of the segment ({} bytes)",
            bytes.len()
        ));
    };
    let Some((body, stored)) = frame.get(field..).and_then(|b| b.split_last_chunk::<4>()) else {
        // Unreachable given the length check above; an error, not a panic, keeps that local.
        return Err("chunk frame shorter than its fixed fields".to_string());
    };
    let stored = u32::from_be_bytes(*stored);
    let computed = crc32c::crc32c(body);
    if stored != computed {
        return Err(format!(
            "chunk checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"
        ));
    }
    let Some((&encoding, data)) = body.split_first() else {
        return Err("chunk frame lacks its encoding byte".to_string());
    };
    Ok((RawChunk { encoding, data }, offset + frame.len()))
}

/// The chunk at byte `offset` of `segment`, the contents of the segment file at `path` (named in
/// errors): what [`super::ChunkReader::chunk`] does once it has found the segment, for callers that hold
/// the bytes some other way.
pub fn read_chunk_at<'a>(path: &Path, segment: &'a [u8], offset: u32) -> Result<RawChunk<'a>> {
    read_frame(path, segment, offset as usize).map(|(c, _)| c)
}

/// Walks the chunks of one segment in file order, yielding each with its reference.
///
/// Stops at the end of the segment, or after yielding the first error (a torn or damaged frame);
/// [`SegmentIter::position`] then tells where the intact prefix ends. A segment that ends exactly after
/// a frame is complete: Prometheus truncates its preallocated segments to the last frame.
#[derive(Debug, Clone)]
pub struct SegmentIter<'a> {
    path: &'a Path,
    bytes: &'a [u8],
    segment: u32,
    pos: usize,
    done: bool,
}

impl<'a> SegmentIter<'a> {
    /// An iterator over `bytes`, the contents of the segment at zero-based position `segment` (used for
    /// the references it yields) stored at `path` (used in errors). Fails if the header is invalid.
    pub fn new(segment: u32, path: &'a Path, bytes: &'a [u8]) -> Result<Self> {
        check_header(path, bytes)?;
        Ok(SegmentIter {
            path,
            bytes,
            segment,
            pos: SEGMENT_HEADER_SIZE,
            done: false,
        })
    }

    /// Offset just past the last chunk read intact: the segment's length once iteration ended without
    /// an error, else the start of the damaged frame.
    pub fn position(&self) -> u64 {
        self.pos as u64
    }
}

impl<'a> Iterator for SegmentIter<'a> {
    type Item = Result<(ChunkRef, RawChunk<'a>)>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done || self.pos >= self.bytes.len() {
            self.done = true;
            return None;
        }
        let Ok(offset) = u32::try_from(self.pos) else {
            self.done = true;
            return Some(Err(corrupt(
                self.path,
                self.pos,
                "chunk starts beyond the 4 GiB a chunk reference can address",
            )));
        };
        match read_frame(self.path, self.bytes, self.pos) {
            Ok((chunk, end)) => {
                self.pos = end;
                Some(Ok((ChunkRef::new(self.segment, offset), chunk)))
            }
            Err(e) => {
                self.done = true;
                Some(Err(e))
            }
        }
    }
}
