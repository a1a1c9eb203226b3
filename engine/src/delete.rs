//! Deleting series data by matchers and time range ([`Db::delete`]) and rewriting blocks without the
//! deleted data ([`Db::clean_tombstones`]), as Prometheus' TSDB admin API does.
//!
//! A deletion never rewrites data at once: it records tombstones, closed time intervals per series.
//! In a block they go to the block's `tombstones` file (written atomically, `numTombstones` in
//! `meta.json` updated) and the loaded block is replaced by a reopened one that sees them. In the head
//! they go to the WAL as a tombstones record first, then to the head's in-memory tombstones; WAL replay
//! restores them and checkpoints keep them. Reads hide samples under tombstones, and blocks written
//! from the head or from other blocks leave them out, so the data is gone from disk at the next
//! compaction that touches it, or when `clean_tombstones` rewrites the block.
//!
//! This module owns when and where tombstones are recorded and the block rewrite; it does not own the
//! tombstones file format ([`crate::tombstones`]), the WAL record encoding (`ember_wal::record`) nor how
//! the block reader applies block tombstones ([`crate::block::reader`]).

use std::sync::Arc;

use ember_index::Matcher;
use ember_wal::record::{Tombstone, encode_tombstones};
use ulid::Ulid;

use crate::block::writer::write_block;
use crate::block::{Block, BlockMeta, dir as blockdir};
use crate::db::Db;
use crate::error::{Error, Result};
use crate::read::{ChunkData, SeriesChunk, decode_chunk, reencode};
use crate::tombstones::Interval;

/// `chunks` (time-ordered) without the samples inside `deleted`: a chunk entirely inside one interval
/// is dropped without decoding, a chunk partly inside is re-encoded with the rest. A chunk that cannot
/// be decoded is kept as a failed chunk, so the query that reads it reports the error.
pub(crate) fn hide_deleted(chunks: Vec<SeriesChunk>, deleted: &[Interval]) -> Vec<SeriesChunk> {
    if deleted.is_empty() {
        return chunks;
    }
    let mut out = Vec::with_capacity(chunks.len());
    let mut buf = Vec::new();
    for c in chunks {
        if Interval::new(c.min_t, c.max_t).is_subrange_of(deleted) {
            continue;
        }
        if !deleted
            .iter()
            .any(|d| d.mint <= c.max_t && c.min_t <= d.maxt)
        {
            out.push(c);
            continue;
        }
        buf.clear();
        match decode_chunk(&c.data, &mut buf) {
            Ok(()) => {
                buf.retain(|&(t, _)| !deleted.iter().any(|d| d.contains(t)));
                out.extend(reencode(&buf));
            }
            Err(e) => out.push(SeriesChunk {
                data: ChunkData::Failed(c.data.failure(&e)),
                ..c
            }),
        }
    }
    out
}

/// What [`Db::delete`] recorded.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct DeleteStats {
    /// Head series that received a tombstone.
    pub head_series: usize,
    /// Blocks whose tombstones changed.
    pub blocks: Vec<Ulid>,
}

impl Db {
    /// Deletes the samples in `[mint, maxt]` (inclusive, milliseconds) of every series matching all
    /// `matchers`, in the head and in every block. Like Prometheus, an interval is clamped to the data the
    /// series holds when it is recorded, so samples appended later are not hidden. Durable when it
    /// returns: block tombstones are fsynced, head tombstones are in the WAL.
    ///
    /// Runs under the compaction lock, so no compaction reads a block or the head halfway through.
    pub fn delete(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<DeleteStats> {
        let inner = &self.inner;
        if inner.is_closed() {
            return Err(Error::Closed);
        }
        let mut stats = DeleteStats::default();
        if mint > maxt {
            return Ok(stats);
        }
        let _guard = inner.compact_lock.lock();
        let blocks = inner.blocks.read().clone();
        for b in blocks.iter().filter(|b| b.overlaps(mint, maxt)) {
            let added = b.deletion(matchers, mint, maxt)?;
            if added.is_empty() {
                continue;
            }
            let mut stones = b.tombstones().clone();
            stones.merge(&added);
            if stones == *b.tombstones() {
                continue;
            }
            // The tombstones file first: a crash before meta.json is rewritten leaves only a stale
            // count, never lost deletions.
            stones.write_to_dir(b.dir())?;
            let mut meta = b.meta().clone();
            meta.stats.num_tombstones = stones.total();
            meta.write_to_dir(b.dir())?;
            let reopened = Arc::new(Block::open(b.dir())?);
            self.swap_blocks(&[meta.ulid], Some(reopened));
            stats.blocks.push(meta.ulid);
        }
        stats.head_series = self.delete_in_head(matchers, mint, maxt)?;
        Ok(stats)
    }

    /// Records head tombstones: into the WAL, then into the head. Returns the series affected.
    fn delete_in_head(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<usize> {
        let head = &self.inner.head;
        let (hmin, hmax) = (head.min_time(), head.max_time());
        if hmin > hmax || maxt < hmin || mint > hmax {
            return Ok(0);
        }
        let refs = {
            let p = head.postings.read();
            if matchers.is_empty() {
                p.all().to_vec()
            } else {
                p.postings_for_matchers(matchers)
            }
        };
        let mut stones = Vec::new();
        for r in refs {
            let Some(cell) = head.get(r) else { continue };
            let span = {
                let s = cell.state.lock();
                s.min_time().zip(s.last().map(|(t, _)| t))
            };
            let Some((smin, smax)) = span else { continue };
            let (lo, hi) = (mint.max(smin), maxt.min(smax));
            if lo <= hi {
                stones.push(Tombstone {
                    r,
                    intervals: vec![(lo, hi)],
                });
            }
        }
        if stones.is_empty() {
            return Ok(0);
        }
        let mut buf = Vec::new();
        encode_tombstones(&stones, &mut buf);
        self.inner.wal.log(&[&buf])?;
        let mut ts = head.tombstones.write();
        for st in &stones {
            for &(lo, hi) in &st.intervals {
                ts.add(st.r, Interval::new(lo, hi));
            }
        }
        Ok(stones.len())
    }

    /// Rewrites every block that has tombstones without the deleted samples, as Prometheus'
    /// `CleanTombstones`: the new block (fresh ULID, level 1, the old block as its parent) is written in a
    /// temporary directory and renamed into place, then the old block is unloaded and deleted. A block
    /// whose every sample was deleted is only deleted. Returns `(replaced, written)` ULIDs.
    ///
    /// A crash after the new block is in place loses nothing: on open the old block is found listed as
    /// the new one's parent and deleted.
    pub fn clean_tombstones(&self) -> Result<(Vec<Ulid>, Vec<Ulid>)> {
        let inner = &self.inner;
        if inner.is_closed() {
            return Err(Error::Closed);
        }
        let _guard = inner.compact_lock.lock();
        let blocks = inner.blocks.read().clone();
        let (mut replaced, mut written) = (Vec::new(), Vec::new());
        for b in blocks.iter().filter(|b| !b.tombstones().is_empty()) {
            let old = b.meta();
            let mut meta = BlockMeta::new(old.min_time, old.max_time);
            meta.compaction.parents = vec![old.desc()];
            let series = b
                .select(&[], old.min_time, old.max_time - 1)?
                .into_iter()
                .map(|s| {
                    let (labels, chunks) = s.into_parts();
                    crate::block::writer::SeriesToWrite { labels, chunks }
                })
                .collect();
            // A compacted block keeps the compact tier's encoding when it is rewritten.
            let zstd = inner.opts.compress_compacted_chunks && old.compaction.level >= 2;
            let new = match write_block(&inner.dir, &mut meta, series, zstd)? {
                Some(path) => Some(Arc::new(self.open_written(&path, meta.ulid)?)),
                None => {
                    // Nothing left: mark it so a crash before the deletion still ends with it gone.
                    let mut m = old.clone();
                    m.compaction.deletable = true;
                    m.write_to_dir(b.dir())?;
                    None
                }
            };
            written.extend(new.as_ref().map(|n| n.meta().ulid));
            tracing::info!(old = %old.ulid, new = ?new.as_ref().map(|n| n.meta().ulid), "block rewritten without its tombstones");
            self.swap_blocks(&[old.ulid], new);
            blockdir::delete_block(&inner.dir, old.ulid)?;
            replaced.push(old.ulid);
        }
        Ok((replaced, written))
    }
}
