//! Writing one block directory from label-sorted series and their chunks.
//!
//! The block is built in `<ulid>.tmp-for-creation/` next to where it will live: chunk segments (via
//! [`ChunkWriter`], fsynced), the index (via the index crate's writer, fsynced), an empty `tombstones`
//! file and `meta.json` with the block's counts; then the temporary directory is fsynced, renamed to
//! `<ulid>/`, and the parent directory fsynced. Until the rename the block does not exist for readers;
//! after it, every file in it is complete. A failure removes the temporary directory.
//!
//! It does not own where series come from (the head or other blocks) nor deleting parent blocks.

use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

use ember_index::Labels;
use ember_index::block::{ChunkMeta, IndexWriter};

use super::dir::TMP_FOR_CREATION;
use super::fileutil::{io_err, sync_dir};
use super::{BlockMeta, CHUNKS_DIRNAME, INDEX_FILENAME};
use crate::chunkenc::ENCODING_XOR;
use crate::chunks::{ChunkWriter, RawChunk};
use crate::error::{Error, Result};
use crate::read::{ChunkData, SeriesChunk, decode_chunk, reencode};
use crate::tombstones::Tombstones;

/// One series to write: its labels and chunks in time order, not overlapping.
pub(crate) struct SeriesToWrite {
    pub(crate) labels: Labels,
    pub(crate) chunks: Vec<SeriesChunk>,
}

/// Maps an error of the index crate to the engine's, naming the index file.
pub(crate) fn index_err(path: &Path, e: ember_index::Error) -> Error {
    match e {
        ember_index::Error::CorruptIndex { offset, reason } => Error::CorruptFile {
            path: path.to_path_buf(),
            offset,
            reason,
        },
        ember_index::Error::Io {
            op, kind, message, ..
        } => Error::Io {
            path: path.to_path_buf(),
            source: std::io::Error::new(kind, format!("{op}: {message}")),
        },
        other => Error::Corruption {
            path: path.to_path_buf(),
            reason: other.to_string(),
        },
    }
}

/// Writes a block holding `series` (sorted by labels, unique) restricted to the block's range
/// `[meta.min_time, meta.max_time)` into `parent/<meta.ulid>/`. Chunks reaching outside the range
/// are cut to it. Fills in `meta.stats`. Returns `None` and leaves nothing behind when no sample falls in
/// the range (Prometheus does not write empty blocks either). With `zstd_chunks`, the chunk segments are
/// Ember's zstd-compressed ones, which Prometheus cannot read.
pub(crate) fn write_block(
    parent: &Path,
    meta: &mut BlockMeta,
    series: Vec<SeriesToWrite>,
    zstd_chunks: bool,
) -> Result<Option<PathBuf>> {
    let (mint, maxt) = (meta.min_time, meta.max_time.saturating_sub(1));
    let mut kept = Vec::with_capacity(series.len());
    for s in series {
        let chunks = clip_chunks(s.chunks, mint, maxt)?;
        if !chunks.is_empty() {
            kept.push(SeriesToWrite {
                labels: s.labels,
                chunks,
            });
        }
    }
    meta.stats = Default::default();
    if kept.is_empty() {
        return Ok(None);
    }
    let final_dir = parent.join(meta.ulid.to_string());
    let tmp = parent.join(format!("{}{TMP_FOR_CREATION}", meta.ulid));
    if tmp.exists() {
        fs::remove_dir_all(&tmp).map_err(|e| io_err(&tmp, e))?;
    }
    fs::create_dir_all(&tmp).map_err(|e| io_err(&tmp, e))?;
    let res = fill(&tmp, meta, &kept, zstd_chunks).and_then(|()| {
        sync_dir(&tmp)?;
        fs::rename(&tmp, &final_dir).map_err(|e| io_err(&final_dir, e))?;
        sync_dir(parent)
    });
    if let Err(e) = res {
        fs::remove_dir_all(&tmp).ok();
        return Err(e);
    }
    Ok(Some(final_dir))
}

fn fill(
    tmp: &Path,
    meta: &mut BlockMeta,
    series: &[SeriesToWrite],
    zstd_chunks: bool,
) -> Result<()> {
    // Prometheus' head lists the empty string among its symbols (the name and value of its all-series
    // postings key), and every block it writes inherits it; keeping it makes Ember's index files the
    // same bytes as Prometheus' for the same series and chunks.
    let mut symbols = BTreeSet::from([""]);
    for s in series {
        for l in s.labels.iter() {
            symbols.insert(l.name.as_str());
            symbols.insert(l.value.as_str());
        }
    }
    let index_path = tmp.join(INDEX_FILENAME);
    let mut iw = IndexWriter::create(&index_path).map_err(|e| index_err(&index_path, e))?;
    for s in &symbols {
        iw.add_symbol(s).map_err(|e| index_err(&index_path, e))?;
    }
    let mut cw = ChunkWriter::create(tmp.join(CHUNKS_DIRNAME))?;
    if zstd_chunks {
        cw = cw.with_default_zstd();
    }
    let mut metas = Vec::new();
    let mut raw = Vec::new();
    for s in series {
        raw.clear();
        for c in &s.chunks {
            raw.push(RawChunk {
                encoding: ENCODING_XOR,
                data: c.data.bytes()?,
            });
            meta.stats.num_samples += u64::from(num_samples(c.data.bytes()?));
        }
        let refs = cw.write_chunks(&raw)?;
        metas.clear();
        metas.extend(s.chunks.iter().zip(refs).map(|(c, r)| ChunkMeta {
            min_time: c.min_t,
            max_time: c.max_t,
            chunk_ref: r.0,
        }));
        iw.add_series(&s.labels, &metas)
            .map_err(|e| index_err(&index_path, e))?;
        meta.stats.num_series += 1;
        meta.stats.num_chunks += s.chunks.len() as u64;
    }
    meta.stats.num_float_samples = meta.stats.num_samples;
    cw.finish()?;
    iw.close().map_err(|e| index_err(&index_path, e))?;
    Tombstones::new().write_to_dir(tmp)?;
    meta.write_to_dir(tmp)?;
    Ok(())
}

fn num_samples(chunk: &[u8]) -> u16 {
    match chunk.first_chunk::<2>() {
        Some(&[hi, lo]) => u16::from_be_bytes([hi, lo]),
        None => 0,
    }
}

/// The chunks restricted to `[mint, maxt]`: chunks inside are kept as they are, chunks reaching outside
/// are decoded and re-encoded with only the samples inside, chunks outside are dropped. A chunk that
/// cannot be read fails the write: a block must not silently lose data.
fn clip_chunks(chunks: Vec<SeriesChunk>, mint: i64, maxt: i64) -> Result<Vec<SeriesChunk>> {
    let mut out = Vec::with_capacity(chunks.len());
    let mut buf = Vec::new();
    for c in chunks {
        if let ChunkData::Failed(_) = &c.data {
            c.data.bytes()?;
        }
        if c.max_t < mint || c.min_t > maxt {
            continue;
        }
        if c.min_t >= mint && c.max_t <= maxt {
            out.push(c);
            continue;
        }
        buf.clear();
        decode_chunk(&c.data, &mut buf)?;
        buf.retain(|&(t, _)| t >= mint && t <= maxt);
        out.extend(reencode(&buf));
    }
    Ok(out)
}

#[cfg(test)]
mod tests;
