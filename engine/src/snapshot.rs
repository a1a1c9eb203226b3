//! Snapshots ([`Db::snapshot`]): a copy of the database's blocks, and optionally of the head as one more
//! block, in a directory that opens as a database of its own (or with Prometheus and promtool).
//!
//! Block files never change once written (a deletion replaces the `tombstones` file by renaming a new
//! one over it), so a block is copied by hard-linking its files; only the head is written out. This
//! module owns the snapshot directory's layout; it does not own naming the snapshot (the server's admin
//! API picks `snapshots/<time>-<random>` as Prometheus does) nor the block format.

use std::fs;
use std::path::Path;

use crate::block::fileutil::{io_err, sync_dir};
use crate::block::writer::write_block;
use crate::block::{BlockMeta, CHUNKS_DIRNAME, META_FILENAME, TOMBSTONES_FILENAME};
use crate::db::Db;
use crate::error::{Error, Result};

/// What [`Db::snapshot`] wrote.
#[derive(Debug, Default, Clone)]
pub struct SnapshotStats {
    /// Blocks linked into the snapshot.
    pub blocks: usize,
    /// The block written from the head, if the head was included and held samples.
    pub head_block: Option<ulid::Ulid>,
}

impl Db {
    /// Writes a snapshot into `dir` (created if missing): every loaded block hard-linked as
    /// `dir/<ulid>/`, and with `with_head` the head's samples (deleted ones left out) as one more block
    /// over the head's time range. Refuses the data directory itself and a directory named like a
    /// block, as Prometheus does. Runs under the compaction lock, so the set of blocks is fixed.
    pub fn snapshot(&self, dir: impl AsRef<Path>, with_head: bool) -> Result<SnapshotStats> {
        let dir = dir.as_ref();
        let inner = &self.inner;
        if inner.is_closed() {
            return Err(Error::Closed);
        }
        let refuse = |reason: &str| Error::Io {
            path: dir.to_path_buf(),
            source: std::io::Error::new(std::io::ErrorKind::InvalidInput, reason.to_string()),
        };
        let same_as_data = match (fs::canonicalize(dir), fs::canonicalize(&inner.dir)) {
            (Ok(a), Ok(b)) => a == b,
            _ => dir == inner.dir,
        };
        if same_as_data {
            return Err(refuse("cannot snapshot into the data directory itself"));
        }
        if dir
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(crate::block::dir::block_ulid)
            .is_some()
        {
            return Err(refuse(
                "a snapshot directory must not be named like a block",
            ));
        }
        fs::create_dir_all(dir).map_err(|e| io_err(dir, e))?;
        let _guard = inner.compact_lock.lock();
        let blocks = inner.blocks.read().clone();
        let mut stats = SnapshotStats::default();
        for b in blocks.iter() {
            link_block(b.dir(), &dir.join(b.meta().ulid.to_string()))?;
            stats.blocks += 1;
        }
        if with_head {
            let h = &inner.head;
            let (mint, maxt) = (h.min_time(), h.max_time());
            if mint <= maxt {
                // Block ranges are half-open; the head's newest sample must be inside.
                let mut meta = BlockMeta::new(mint, maxt.saturating_add(1));
                let series = h.series_for_block(mint, maxt);
                // The head's block is a level-1 block: Prometheus' format, like every head block.
                if write_block(dir, &mut meta, series, false)?.is_some() {
                    stats.head_block = Some(meta.ulid);
                }
            }
        }
        sync_dir(dir)?;
        Ok(stats)
    }
}

/// Hard-links the files of the block in `src` into `dst` (meta.json, index, tombstones, chunk segments).
fn link_block(src: &Path, dst: &Path) -> Result<()> {
    let dst_chunks = dst.join(CHUNKS_DIRNAME);
    fs::create_dir_all(&dst_chunks).map_err(|e| io_err(&dst_chunks, e))?;
    let link = |from: &Path, to: &Path| fs::hard_link(from, to).map_err(|e| io_err(to, e));
    for name in [META_FILENAME, crate::block::INDEX_FILENAME] {
        link(&src.join(name), &dst.join(name))?;
    }
    // Blocks written by old Prometheus versions may lack the tombstones file; so may their copy.
    let stones = src.join(TOMBSTONES_FILENAME);
    if stones.exists() {
        link(&stones, &dst.join(TOMBSTONES_FILENAME))?;
    }
    let src_chunks = src.join(CHUNKS_DIRNAME);
    for entry in fs::read_dir(&src_chunks).map_err(|e| io_err(&src_chunks, e))? {
        let entry = entry.map_err(|e| io_err(&src_chunks, e))?;
        link(&entry.path(), &dst_chunks.join(entry.file_name()))?;
    }
    sync_dir(&dst_chunks)?;
    sync_dir(dst)
}
