//! Sequential record reader over segment files: [`Reader`].
//!
//! Owns: parsing pages and fragment headers, checksum verification,
//! reassembling fragmented records, transparent decompression (snappy and
//! zstd), and classifying every way the bytes can be wrong into a positioned
//! [`Error::Corruption`]. Never panics on any input.
//! Does not own: decoding record contents ([`crate::record`]), fixing the files
//! ([`crate::repair`]), or the policy of which corruptions to repair.
//!
//! Each segment is parsed on its own: records never span segments, so the end
//! of a segment is always a record boundary, and a record left unfinished there
//! is reported as [`CorruptionKind::UnexpectedEof`] in that segment.

use std::fs::File;
use std::io::{self, Read};
use std::path::Path;

use crate::error::{CorruptionKind, Error, IoContext, Result};
use crate::segment::{
    FragmentCompression, FragmentType, HEADER_SIZE, MAX_RECORD_SIZE, PAGE_SIZE, SegmentRef,
    checksum, list_segments, parse_type_byte,
};

/// Read buffer: 16 pages, like Prometheus' segment reader. Must hold at least
/// one page so any single fragment can be made contiguous.
const BUF_SIZE: usize = 16 * PAGE_SIZE;

/// Snappy cannot expand data by more than ~22x (a 3-byte copy op yields at
/// most 64 bytes); a header claiming more is corrupt, and rejecting it keeps a
/// hostile length from driving a huge allocation.
const SNAPPY_MAX_EXPANSION: usize = 32;

/// Reads records from a sequence of segment files in order.
pub struct Reader {
    segments: Vec<SegmentRef>,
    /// Index into `segments` of the segment `cur` reads (or will read next).
    seg_idx: usize,
    cur: Option<Cursor>,
    /// Reassembly buffer for records split into several fragments.
    rec: Vec<u8>,
    /// Decompression output.
    dec: Vec<u8>,
    /// Where the record last returned lives.
    out: Out,
    /// (index into `segments`, offset) of the record last returned.
    last: Option<(usize, u64)>,
    /// Once reading failed, keep reporting that failure.
    failed: Option<Error>,
    zstd: Option<zstd::bulk::Decompressor<'static>>,
    snappy: snap::raw::Decoder,
}

#[derive(Clone, Copy)]
enum Out {
    None,
    /// A single-fragment record, borrowed straight from the read buffer.
    Buf(usize, usize),
    Rec,
    Dec,
}

/// Buffered position within one segment file.
struct Cursor {
    file: File,
    buf: Box<[u8]>,
    start: usize,
    end: usize,
    /// Segment offset of `buf[start]`.
    pos: u64,
    eof: bool,
}

impl Cursor {
    fn open(path: &Path) -> Result<Cursor> {
        Ok(Cursor {
            file: File::open(path).at(path)?,
            buf: vec![0; BUF_SIZE].into_boxed_slice(),
            start: 0,
            end: 0,
            pos: 0,
            eof: false,
        })
    }

    /// Make at least `n` (<= BUF_SIZE) bytes available unless the file ends
    /// first; returns how many are available.
    fn fill(&mut self, n: usize) -> io::Result<usize> {
        debug_assert!(n <= BUF_SIZE);
        while self.end - self.start < n && !self.eof {
            if self.buf.len() - self.start < n {
                self.buf.copy_within(self.start..self.end, 0);
                self.end -= self.start;
                self.start = 0;
            }
            match self.file.read(&mut self.buf[self.end..]) {
                Ok(0) => self.eof = true,
                Ok(r) => self.end += r,
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                Err(e) => return Err(e),
            }
        }
        Ok(self.end - self.start)
    }

    fn consume(&mut self, n: usize) {
        self.start += n;
        self.pos += n as u64;
    }
}

impl Reader {
    /// Read every segment in `dir`, in index order.
    pub fn open_dir(dir: &Path) -> Result<Reader> {
        Ok(Reader::from_segments(list_segments(dir)?))
    }

    /// Read segments `first..=last` of `dir`. `last` may lie beyond the newest
    /// segment (e.g. `u32::MAX` for "to the end"), but every segment from
    /// `first` up to the newest one in the range must exist: a missing one
    /// would silently skip writes.
    pub fn open_range(dir: &Path, first: u32, last: u32) -> Result<Reader> {
        Ok(Reader::from_segments(select_range(dir, first, last)?))
    }

    /// The replay view of a WAL directory: the newest checkpoint's records,
    /// then every segment after the one the checkpoint ends at (segments it
    /// covers but that were not truncated yet are skipped).
    pub fn open_with_checkpoint(wal_dir: &Path) -> Result<Reader> {
        let Some((cp_dir, cp_index)) = crate::checkpoint::last_checkpoint(wal_dir)? else {
            return Reader::open_dir(wal_dir);
        };
        let mut segs = list_segments(&cp_dir)?;
        let wal_segs: Vec<SegmentRef> = list_segments(wal_dir)?
            .into_iter()
            .filter(|s| s.index > cp_index)
            .collect();
        if let Some(first) = wal_segs.first()
            && first.index != cp_index + 1
        {
            return Err(Error::Layout {
                dir: wal_dir.to_path_buf(),
                reason: format!(
                    "checkpoint ends at segment {cp_index} but the next segment present is {}",
                    first.index
                ),
            });
        }
        segs.extend(wal_segs);
        Ok(Reader::from_segments(segs))
    }

    pub(crate) fn from_segments(segments: Vec<SegmentRef>) -> Reader {
        Reader {
            segments,
            seg_idx: 0,
            cur: None,
            rec: Vec::new(),
            dec: Vec::new(),
            out: Out::None,
            last: None,
            failed: None,
            zstd: None,
            snappy: snap::raw::Decoder::new(),
        }
    }

    /// The next record's bytes (decompressed), `Ok(None)` at the clean end of
    /// the last segment. After an error every later call returns that error
    /// again. The slice is valid until the next call.
    pub fn next_record(&mut self) -> Result<Option<&[u8]>> {
        if let Some(e) = &self.failed {
            return Err(e.duplicate());
        }
        match self.advance() {
            Ok(true) => Ok(Some(self.current())),
            Ok(false) => Ok(None),
            Err(e) => {
                self.failed = Some(e.duplicate());
                Err(e)
            }
        }
    }

    /// Segment index and byte offset of the record last returned.
    pub fn position(&self) -> Option<(u32, u64)> {
        self.last.map(|(i, off)| (self.segments[i].index, off))
    }

    /// Turn a decoder's [`Error::Record`] about the record last returned into
    /// a positioned [`Error::Corruption`] of kind [`CorruptionKind::Record`];
    /// any other error is returned unchanged.
    pub fn locate(&self, err: Error) -> Error {
        match (err, self.last) {
            (Error::Record(reason), Some((i, offset))) => {
                let seg = &self.segments[i];
                Error::corruption(&seg.path, seg.index, offset, CorruptionKind::Record, reason)
            }
            (err, _) => err,
        }
    }

    fn current(&self) -> &[u8] {
        match self.out {
            Out::None => &[],
            Out::Buf(s, e) => match &self.cur {
                Some(c) => &c.buf[s..e],
                None => &[],
            },
            Out::Rec => &self.rec,
            Out::Dec => &self.dec,
        }
    }

    /// Move to the next record; false at the end of the last segment.
    fn advance(&mut self) -> Result<bool> {
        self.out = Out::None;
        loop {
            if self.cur.is_none() {
                let Some(seg) = self.segments.get(self.seg_idx) else {
                    return Ok(false);
                };
                self.cur = Some(Cursor::open(&seg.path)?);
            }
            if self.read_in_segment()? {
                return Ok(true);
            }
            self.cur = None;
            self.seg_idx += 1;
        }
    }

    /// Read one record from the current segment; false at its clean end.
    fn read_in_segment(&mut self) -> Result<bool> {
        let Reader {
            segments,
            seg_idx,
            cur,
            rec,
            dec,
            out,
            last,
            zstd,
            snappy,
            ..
        } = self;
        let seg = &segments[*seg_idx];
        let cur = cur.as_mut().expect("segment open");
        let corrupt = |offset: u64, kind: CorruptionKind, reason: String| {
            Error::corruption(&seg.path, seg.index, offset, kind, reason)
        };
        let io_err = |e: io::Error| Error::io(&seg.path, e);

        rec.clear();
        // Offset and compression of a record whose first fragment was read.
        let mut pending: Option<(u64, FragmentCompression)> = None;
        loop {
            let frag_off = cur.pos;
            let rec_off = pending.map_or(frag_off, |(off, _)| off);
            let in_page = (frag_off % PAGE_SIZE as u64) as usize;

            if cur.fill(1).map_err(io_err)? == 0 {
                return match pending {
                    None => Ok(false),
                    Some(_) => Err(corrupt(
                        rec_off,
                        CorruptionKind::UnexpectedEof,
                        format!(
                            "segment ends at offset {frag_off} before the last fragment of the record"
                        ),
                    )),
                };
            }

            if cur.buf[cur.start] == 0 {
                // Padding: zeros to the end of the page (or of the file, if the
                // writer stopped mid-page).
                let to_end = PAGE_SIZE - in_page;
                let n = cur.fill(to_end).map_err(io_err)?.min(to_end);
                if let Some(i) = cur.buf[cur.start..cur.start + n]
                    .iter()
                    .position(|&b| b != 0)
                {
                    return Err(corrupt(
                        rec_off,
                        CorruptionKind::InvalidFragment,
                        format!(
                            "non-zero byte at offset {} inside page padding",
                            frag_off + i as u64
                        ),
                    ));
                }
                cur.consume(n);
                continue;
            }

            if PAGE_SIZE - in_page < HEADER_SIZE {
                return Err(corrupt(
                    rec_off,
                    CorruptionKind::InvalidFragment,
                    format!(
                        "fragment header at offset {frag_off} starts in the last {} bytes of a page",
                        PAGE_SIZE - in_page
                    ),
                ));
            }
            if cur.fill(HEADER_SIZE).map_err(io_err)? < HEADER_SIZE {
                return Err(corrupt(
                    rec_off,
                    CorruptionKind::UnexpectedEof,
                    format!("segment ends inside the fragment header at offset {frag_off}"),
                ));
            }
            let h = &cur.buf[cur.start..cur.start + HEADER_SIZE];
            let (typ, compression) = parse_type_byte(h[0]).map_err(|why| {
                corrupt(
                    rec_off,
                    CorruptionKind::InvalidFragment,
                    format!("{why} at offset {frag_off}"),
                )
            })?;
            let len = u16::from_be_bytes([h[1], h[2]]) as usize;
            let crc = u32::from_be_bytes([h[3], h[4], h[5], h[6]]);
            if in_page + HEADER_SIZE + len > PAGE_SIZE {
                return Err(corrupt(
                    rec_off,
                    CorruptionKind::InvalidFragment,
                    format!("fragment of {len} bytes at offset {frag_off} runs past the page end"),
                ));
            }
            let total = HEADER_SIZE + len;
            if cur.fill(total).map_err(io_err)? < total {
                return Err(corrupt(
                    rec_off,
                    CorruptionKind::UnexpectedEof,
                    format!("segment ends inside the {len}-byte fragment at offset {frag_off}"),
                ));
            }
            let data_start = cur.start + HEADER_SIZE;
            let data = &cur.buf[data_start..data_start + len];
            let actual = checksum(data);
            if actual != crc {
                return Err(corrupt(
                    rec_off,
                    CorruptionKind::Checksum,
                    format!(
                        "fragment at offset {frag_off} has CRC32C {actual:#010x}, header says {crc:#010x}"
                    ),
                ));
            }

            let done = match (typ, pending) {
                (FragmentType::Full, None) => {
                    *out = Out::Buf(data_start, data_start + len);
                    true
                }
                (FragmentType::First, None) => {
                    rec.extend_from_slice(data);
                    pending = Some((frag_off, compression));
                    false
                }
                (FragmentType::Middle | FragmentType::Last, Some((_, c))) => {
                    if c != compression {
                        return Err(corrupt(
                            rec_off,
                            CorruptionKind::InvalidFragment,
                            format!(
                                "fragment at offset {frag_off} changes the record's compression flag"
                            ),
                        ));
                    }
                    rec.extend_from_slice(data);
                    if typ == FragmentType::Last {
                        *out = Out::Rec;
                        true
                    } else {
                        false
                    }
                }
                (FragmentType::Full | FragmentType::First, Some(_)) => {
                    return Err(corrupt(
                        rec_off,
                        CorruptionKind::InvalidFragment,
                        format!(
                            "{typ:?} fragment at offset {frag_off} interrupts an unfinished record"
                        ),
                    ));
                }
                (FragmentType::Middle | FragmentType::Last, None) => {
                    return Err(corrupt(
                        rec_off,
                        CorruptionKind::InvalidFragment,
                        format!("{typ:?} fragment at offset {frag_off} without a first fragment"),
                    ));
                }
            };
            cur.consume(total);
            if !done {
                continue;
            }

            *last = Some((*seg_idx, rec_off));
            if compression != FragmentCompression::None {
                let input: &[u8] = match *out {
                    Out::Buf(s, e) => &cur.buf[s..e],
                    _ => rec,
                };
                decompress(compression, input, dec, zstd, snappy)
                    .map_err(|why| corrupt(rec_off, CorruptionKind::Decompress, why))?;
                *out = Out::Dec;
            }
            return Ok(true);
        }
    }
}

impl std::fmt::Debug for Reader {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Reader")
            .field("segments", &self.segments)
            .field("seg_idx", &self.seg_idx)
            .finish_non_exhaustive()
    }
}

/// Segments `first..=last` of `dir`; see [`Reader::open_range`].
pub(crate) fn select_range(dir: &Path, first: u32, last: u32) -> Result<Vec<SegmentRef>> {
    if first > last {
        return Err(Error::InvalidArgument(format!(
            "empty segment range {first}..={last}"
        )));
    }
    let all = list_segments(dir)?;
    let Some(newest) = all.last().map(|s| s.index) else {
        return Ok(Vec::new());
    };
    let sel: Vec<SegmentRef> = all
        .into_iter()
        .filter(|s| s.index >= first && s.index <= last)
        .collect();
    if first <= newest && sel.first().map(|s| s.index) != Some(first) {
        return Err(Error::Layout {
            dir: dir.to_path_buf(),
            reason: format!("segment {first} requested but not present"),
        });
    }
    Ok(sel)
}

fn decompress(
    compression: FragmentCompression,
    input: &[u8],
    out: &mut Vec<u8>,
    zstd_ctx: &mut Option<zstd::bulk::Decompressor<'static>>,
    snappy: &mut snap::raw::Decoder,
) -> Result<(), String> {
    out.clear();
    match compression {
        FragmentCompression::None => {
            out.extend_from_slice(input);
            Ok(())
        }
        FragmentCompression::Snappy => {
            let n = snap::raw::decompress_len(input).map_err(|e| format!("snappy: {e}"))?;
            if n > MAX_RECORD_SIZE || n > input.len().saturating_mul(SNAPPY_MAX_EXPANSION) {
                return Err(format!(
                    "snappy header claims {n} bytes from {} compressed bytes",
                    input.len()
                ));
            }
            out.resize(n, 0);
            let got = snappy
                .decompress(input, out)
                .map_err(|e| format!("snappy: {e}"))?;
            out.truncate(got);
            Ok(())
        }
        FragmentCompression::Zstd => {
            match zstd::zstd_safe::get_frame_content_size(input) {
                Ok(Some(n)) => {
                    if n > MAX_RECORD_SIZE as u64 {
                        return Err(format!("zstd frame claims {n} bytes"));
                    }
                    let ctx = match zstd_ctx {
                        Some(c) => c,
                        None => zstd_ctx.insert(
                            zstd::bulk::Decompressor::new().map_err(|e| format!("zstd: {e}"))?,
                        ),
                    };
                    // Capacity bounds the output: a frame that produces more
                    // than its header said fails instead of growing.
                    out.reserve(n as usize);
                    ctx.decompress_to_buffer(input, out)
                        .map_err(|e| format!("zstd: {e}"))?;
                    Ok(())
                }
                // No content size in the header (a streaming encoder): decode
                // incrementally, capped.
                Ok(None) | Err(_) => {
                    let dec = zstd::stream::read::Decoder::with_buffer(input)
                        .map_err(|e| format!("zstd: {e}"))?;
                    dec.take(MAX_RECORD_SIZE as u64 + 1)
                        .read_to_end(out)
                        .map_err(|e| format!("zstd: {e}"))?;
                    if out.len() > MAX_RECORD_SIZE {
                        return Err(format!(
                            "zstd record exceeds the {MAX_RECORD_SIZE}-byte limit"
                        ));
                    }
                    Ok(())
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snappy_records_from_prometheus_decompress() {
        let raw = b"a snappy-compressed record, as Prometheus writes by default".repeat(20);
        let compressed = snap::raw::Encoder::new().compress_vec(&raw).unwrap();
        let mut out = Vec::new();
        decompress(
            FragmentCompression::Snappy,
            &compressed,
            &mut out,
            &mut None,
            &mut snap::raw::Decoder::new(),
        )
        .unwrap();
        assert_eq!(out, raw);
    }

    #[test]
    fn snappy_length_bomb_is_rejected_without_allocating() {
        // Varint header claiming ~2^32 bytes, no payload.
        let bomb = [0xff, 0xff, 0xff, 0xff, 0x0f];
        let err = decompress(
            FragmentCompression::Snappy,
            &bomb,
            &mut Vec::new(),
            &mut None,
            &mut snap::raw::Decoder::new(),
        )
        .unwrap_err();
        assert!(err.contains("claims"), "{err}");
    }

    #[test]
    fn zstd_without_content_size_still_decompresses() {
        let raw = b"streamed zstd frame".repeat(100);
        let mut enc = zstd::stream::write::Encoder::new(Vec::new(), 1).unwrap();
        enc.include_contentsize(false).unwrap();
        std::io::Write::write_all(&mut enc, &raw).unwrap();
        let compressed = enc.finish().unwrap();
        assert!(matches!(
            zstd::zstd_safe::get_frame_content_size(&compressed),
            Ok(None)
        ));
        let mut out = Vec::new();
        decompress(
            FragmentCompression::Zstd,
            &compressed,
            &mut out,
            &mut None,
            &mut snap::raw::Decoder::new(),
        )
        .unwrap();
        assert_eq!(out, raw);
    }
}
