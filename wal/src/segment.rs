//! Segment files and the fragment framing inside them.
//!
//! Owns: the on-disk constants (page size, header size), segment file naming
//! and listing, the fragment header byte (type + compression flags), and small
//! filesystem helpers (directory fsync). Both the writer and the reader build on
//! these so the two can never disagree about the layout.
//! Does not own: buffering, locking or record contents.

use std::fs;
use std::path::{Path, PathBuf};

use crate::error::{Error, IoContext, Result};

/// Segments are written in pages of this size. A fragment never crosses a page
/// boundary, which bounds how much a reader must buffer and lets it resync on
/// page boundaries.
pub const PAGE_SIZE: usize = 32 * 1024;

/// Fragment header: type byte, big-endian u16 length, big-endian u32 CRC32C.
pub const HEADER_SIZE: usize = 7;

/// Prometheus' default segment size (128 MiB).
pub const DEFAULT_SEGMENT_SIZE: usize = 128 * 1024 * 1024;

/// Largest record (after decompression) the reader will materialise, and the
/// largest record the writer accepts. Bounds the memory a corrupt or hostile
/// compressed payload can make the reader allocate.
pub const MAX_RECORD_SIZE: usize = 256 * 1024 * 1024;

/// Low three bits of the fragment type byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FragmentType {
    Full = 1,
    First = 2,
    Middle = 3,
    Last = 4,
}

/// Payload compression, bits 3 and 4 of the type byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum FragmentCompression {
    None,
    Snappy,
    Zstd,
}

const TYPE_MASK: u8 = 0b0000_0111;
const SNAPPY_FLAG: u8 = 0b0000_1000;
const ZSTD_FLAG: u8 = 0b0001_0000;
const RESERVED_MASK: u8 = 0b1110_0000;

/// Build the header type byte.
pub(crate) fn type_byte(t: FragmentType, c: FragmentCompression) -> u8 {
    let flag = match c {
        FragmentCompression::None => 0,
        FragmentCompression::Snappy => SNAPPY_FLAG,
        FragmentCompression::Zstd => ZSTD_FLAG,
    };
    t as u8 | flag
}

/// Parse a non-zero header type byte. A zero byte is page padding and must be
/// handled by the caller before getting here.
pub(crate) fn parse_type_byte(b: u8) -> Result<(FragmentType, FragmentCompression), String> {
    if b & RESERVED_MASK != 0 {
        // Prometheus ignores these bits today; a future format could use them
        // for something that changes the meaning of the payload, so refuse to
        // guess.
        return Err(format!("reserved bits set in fragment type byte {b:#04x}"));
    }
    let c = match (b & SNAPPY_FLAG != 0, b & ZSTD_FLAG != 0) {
        (false, false) => FragmentCompression::None,
        (true, false) => FragmentCompression::Snappy,
        (false, true) => FragmentCompression::Zstd,
        (true, true) => {
            return Err(format!(
                "both snappy and zstd flags set in fragment type byte {b:#04x}"
            ));
        }
    };
    let t = match b & TYPE_MASK {
        1 => FragmentType::Full,
        2 => FragmentType::First,
        3 => FragmentType::Middle,
        4 => FragmentType::Last,
        other => {
            return Err(format!(
                "unknown fragment type {other} in type byte {b:#04x}"
            ));
        }
    };
    Ok((t, c))
}

/// CRC32-Castagnoli, as Prometheus computes it over each fragment's data.
#[inline]
pub(crate) fn checksum(data: &[u8]) -> u32 {
    crc32c::crc32c(data)
}

/// `dir/00000042`: eight digits, as Prometheus names them.
pub fn segment_path(dir: &Path, index: u32) -> PathBuf {
    dir.join(segment_name(index))
}

pub(crate) fn segment_name(index: u32) -> String {
    format!("{index:08}")
}

/// Parse a segment file name. Any all-digit name is accepted (older
/// Prometheus versions wrote six digits), as long as it fits a `u32`.
pub(crate) fn parse_segment_name(name: &str) -> Option<u32> {
    if name.is_empty() || !name.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    name.parse().ok()
}

/// One segment file found on disk.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct SegmentRef {
    pub index: u32,
    pub path: PathBuf,
}

/// All segments in `dir`, sorted by index. Errors if the indices have a gap:
/// records are replayed in order, and a missing middle segment means lost
/// writes that no reader should silently skip.
pub(crate) fn list_segments(dir: &Path) -> Result<Vec<SegmentRef>> {
    let mut refs = Vec::new();
    for entry in fs::read_dir(dir).at(dir)? {
        let entry = entry.at(dir)?;
        let name = entry.file_name();
        let Some(index) = name.to_str().and_then(parse_segment_name) else {
            continue;
        };
        refs.push(SegmentRef {
            index,
            path: entry.path(),
        });
    }
    refs.sort_by_key(|r| r.index);
    for w in refs.windows(2) {
        if w[0].index == w[1].index {
            return Err(Error::Layout {
                dir: dir.to_path_buf(),
                reason: format!(
                    "two files name segment {} ({} and {})",
                    w[0].index,
                    w[0].path.display(),
                    w[1].path.display()
                ),
            });
        }
        if w[0].index + 1 != w[1].index {
            return Err(Error::Layout {
                dir: dir.to_path_buf(),
                reason: format!(
                    "segments are not sequential: {} is followed by {}",
                    w[0].index, w[1].index
                ),
            });
        }
    }
    Ok(refs)
}

/// fsync a directory so that file creations, renames and deletions in it
/// survive a crash.
pub(crate) fn sync_dir(dir: &Path) -> Result<()> {
    fs::File::open(dir).and_then(|d| d.sync_all()).at(dir)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn type_byte_round_trips_every_valid_combination() {
        for t in [
            FragmentType::Full,
            FragmentType::First,
            FragmentType::Middle,
            FragmentType::Last,
        ] {
            for c in [
                FragmentCompression::None,
                FragmentCompression::Snappy,
                FragmentCompression::Zstd,
            ] {
                assert_eq!(parse_type_byte(type_byte(t, c)), Ok((t, c)));
            }
        }
    }

    #[test]
    fn type_byte_rejects_impossible_headers() {
        for b in [0x05, 0x07, 0x08, 0x10, 0x19, 0x20, 0x81] {
            assert!(parse_type_byte(b).is_err(), "{b:#x}");
        }
    }

    #[test]
    fn segment_names_accept_any_digits() {
        assert_eq!(parse_segment_name("00000003"), Some(3));
        assert_eq!(parse_segment_name("000007"), Some(7));
        assert_eq!(parse_segment_name("12"), Some(12));
        assert_eq!(parse_segment_name("+3"), None);
        assert_eq!(parse_segment_name("3.tmp"), None);
        assert_eq!(parse_segment_name("99999999999"), None);
        assert_eq!(segment_name(3), "00000003");
    }
}
