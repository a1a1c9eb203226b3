//! Tombstones: time ranges of series deleted but not yet compacted away.
//!
//! [`Tombstones`] maps a series reference to its deleted [`Interval`]s, kept sorted and merged, and reads
//! and writes a block's `tombstones` file in Prometheus' layout (`docs/format/tombstones.md`): magic,
//! version, one `(series, mint, maxt)` entry per interval, CRC-32C. A block without the file has no
//! tombstones. It does not own applying tombstones to query results or deciding when a compaction
//! rewrites a block to drop deleted data; the head and the compactor do.
#![deny(clippy::indexing_slicing, clippy::unwrap_used)]

use std::collections::BTreeMap;
use std::path::Path;

use ember_index::SeriesRef;

use crate::block::TOMBSTONES_FILENAME;
use crate::block::fileutil::{io_err, write_atomically};
use crate::{Error, Result};

/// The magic number that opens a tombstones file, stored big-endian.
pub const TOMBSTONES_MAGIC: u32 = 0x0130_BA30;
/// The only tombstones format version.
pub const TOMBSTONES_FORMAT_V1: u8 = 1;
/// Magic (4 bytes) and version (1 byte).
const HEADER_SIZE: usize = 5;
const CRC_SIZE: usize = 4;

/// A closed range of deleted timestamps: both `mint` and `maxt` are deleted.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Interval {
    pub mint: i64,
    pub maxt: i64,
}

impl Interval {
    pub const fn new(mint: i64, maxt: i64) -> Self {
        Interval { mint, maxt }
    }

    /// Whether `t` is deleted by this interval.
    pub const fn contains(&self, t: i64) -> bool {
        self.mint <= t && t <= self.maxt
    }

    /// Whether the whole of `self` lies inside one of `intervals` (a chunk entirely deleted).
    pub fn is_subrange_of(&self, intervals: &[Interval]) -> bool {
        intervals
            .iter()
            .any(|i| i.contains(self.mint) && i.contains(self.maxt))
    }
}

/// Deleted intervals per series. Each series' intervals are sorted, disjoint, and never adjacent:
/// timestamps are integers, so `[1, 5]` and `[6, 9]` are kept as `[1, 9]`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Tombstones {
    series: BTreeMap<SeriesRef, Vec<Interval>>,
}

impl Tombstones {
    pub fn new() -> Self {
        Self::default()
    }

    /// Deletes `iv` from `series`, merging it with the intervals it overlaps or touches. An interval with
    /// `mint > maxt` deletes nothing and is ignored.
    pub fn add(&mut self, series: SeriesRef, iv: Interval) {
        if iv.mint > iv.maxt {
            return;
        }
        let ivs = self.series.entry(series).or_default();
        // i128 so that touching at the i64 limits needs no special case.
        let first = ivs.partition_point(|x| i128::from(x.maxt) + 1 < i128::from(iv.mint));
        let end = first
            + ivs
                .get(first..)
                .unwrap_or_default()
                .partition_point(|x| i128::from(x.mint) <= i128::from(iv.maxt) + 1);
        let mut merged = iv;
        if let (Some(lo), Some(hi)) = (ivs.get(first), end.checked_sub(1).and_then(|e| ivs.get(e)))
            && first < end
        {
            merged.mint = merged.mint.min(lo.mint);
            merged.maxt = merged.maxt.max(hi.maxt);
        }
        ivs.splice(first..end, [merged]);
    }

    /// Adds every interval of `other`.
    pub fn merge(&mut self, other: &Tombstones) {
        for (series, ivs) in other.iter() {
            for &iv in ivs {
                self.add(series, iv);
            }
        }
    }

    /// The deleted intervals of `series`, sorted; empty if none.
    pub fn get(&self, series: SeriesRef) -> &[Interval] {
        self.series.get(&series).map_or(&[], Vec::as_slice)
    }

    /// Series with deletions, in ascending reference order, with their intervals.
    pub fn iter(&self) -> impl Iterator<Item = (SeriesRef, &[Interval])> + '_ {
        self.series.iter().map(|(&s, ivs)| (s, ivs.as_slice()))
    }

    /// Number of series with deletions.
    pub fn num_series(&self) -> usize {
        self.series.len()
    }

    /// Number of intervals over all series (what `meta.json` counts as `numTombstones`).
    pub fn total(&self) -> u64 {
        self.series.values().map(|v| v.len() as u64).sum()
    }

    pub fn is_empty(&self) -> bool {
        self.series.is_empty()
    }

    /// Forgets the deletions of `series` (e.g. once the series itself is gone).
    pub fn remove_series(&mut self, series: SeriesRef) {
        self.series.remove(&series);
    }

    /// Drops intervals that end before `t`, the ones no data at or after `t` can be affected by.
    pub fn truncate_before(&mut self, t: i64) {
        self.series.retain(|_, ivs| {
            ivs.retain(|iv| iv.maxt >= t);
            !ivs.is_empty()
        });
    }

    /// The bytes of a tombstones file holding these intervals, series in ascending order.
    pub fn encode(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(HEADER_SIZE + 16 * self.total() as usize + CRC_SIZE);
        out.extend_from_slice(&TOMBSTONES_MAGIC.to_be_bytes());
        out.push(TOMBSTONES_FORMAT_V1);
        for (series, ivs) in self.iter() {
            for iv in ivs {
                put_uvarint(&mut out, series);
                put_uvarint(&mut out, zigzag(iv.mint));
                put_uvarint(&mut out, zigzag(iv.maxt));
            }
        }
        // The checksum leaves out magic and version, as Prometheus' does.
        let crc = crc32c::crc32c(out.get(HEADER_SIZE..).unwrap_or_default());
        out.extend_from_slice(&crc.to_be_bytes());
        out
    }

    /// Parses the bytes of a tombstones file; `path` only names the file in errors, whose offsets count
    /// from the start of the file.
    pub fn decode(bytes: &[u8], path: &Path) -> Result<Self> {
        let corrupt = |offset: usize, reason: String| Error::CorruptFile {
            path: path.to_path_buf(),
            offset: offset as u64,
            reason,
        };
        let Some((body, stored)) = bytes.split_last_chunk::<CRC_SIZE>() else {
            return Err(corrupt(0, short(bytes.len())));
        };
        let Some((header, entries)) = body.split_first_chunk::<HEADER_SIZE>() else {
            return Err(corrupt(0, short(bytes.len())));
        };
        let [m0, m1, m2, m3, version] = *header;
        let magic = u32::from_be_bytes([m0, m1, m2, m3]);
        if magic != TOMBSTONES_MAGIC {
            return Err(corrupt(
                0,
                format!("invalid tombstones magic {magic:#010x}, want {TOMBSTONES_MAGIC:#010x}"),
            ));
        }
        if version != TOMBSTONES_FORMAT_V1 {
            return Err(corrupt(
                4,
                format!("unsupported tombstones format version {version}"),
            ));
        }
        let stored = u32::from_be_bytes(*stored);
        let computed = crc32c::crc32c(entries);
        if stored != computed {
            return Err(corrupt(
                body.len(),
                format!("checksum mismatch: stored {stored:#010x}, computed {computed:#010x}"),
            ));
        }

        let mut stones = Tombstones::new();
        let mut pos = 0;
        while pos < entries.len() {
            let start = pos;
            let entry = (|| {
                let series = get_uvarint(entries, &mut pos)?;
                let mint = unzigzag(get_uvarint(entries, &mut pos)?);
                let maxt = unzigzag(get_uvarint(entries, &mut pos)?);
                Some((series, Interval { mint, maxt }))
            })();
            let Some((series, iv)) = entry else {
                return Err(corrupt(
                    HEADER_SIZE + start,
                    "truncated or overlong varint in tombstone entry".to_string(),
                ));
            };
            stones.add(series, iv);
        }
        Ok(stones)
    }

    /// Reads `<block_dir>/tombstones`; a block without the file has no tombstones.
    pub fn read_from_dir(block_dir: &Path) -> Result<Self> {
        let path = block_dir.join(TOMBSTONES_FILENAME);
        match std::fs::read(&path) {
            Ok(bytes) => Self::decode(&bytes, &path),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(Self::new()),
            Err(e) => Err(io_err(&path, e)),
        }
    }

    /// Writes `<block_dir>/tombstones` atomically (temporary file, fsync, rename, directory fsync).
    /// Returns the file's size.
    pub fn write_to_dir(&self, block_dir: &Path) -> Result<u64> {
        let bytes = self.encode();
        write_atomically(&block_dir.join(TOMBSTONES_FILENAME), &bytes)?;
        Ok(bytes.len() as u64)
    }
}

fn short(len: usize) -> String {
    format!(
        "file of {len} bytes is shorter than header and checksum ({} bytes)",
        HEADER_SIZE + CRC_SIZE
    )
}

fn zigzag(v: i64) -> u64 {
    ((v << 1) ^ (v >> 63)) as u64
}

fn unzigzag(v: u64) -> i64 {
    ((v >> 1) as i64) ^ -((v & 1) as i64)
}

fn put_uvarint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

/// Go's `binary.Uvarint`: at most 10 bytes, and the 10th may only contribute the top bit.
fn get_uvarint(b: &[u8], pos: &mut usize) -> Option<u64> {
    let mut v = 0u64;
    for i in 0..10 {
        let byte = *b.get(*pos + i)?;
        if i == 9 && byte > 1 {
            return None;
        }
        v |= u64::from(byte & 0x7f) << (7 * i);
        if byte & 0x80 == 0 {
            *pos += i + 1;
            return Some(v);
        }
    }
    None
}

#[cfg(test)]
mod tests;
