//! [`Block`]: one persisted block opened for queries — its `meta.json`, its memory-mapped index and chunk
//! segments, and its tombstones.
//!
//! Opening checks what can be checked without reading every series: `meta.json` parses and names the
//! directory's ULID, every chunk segment has a valid header, the index's header, table of contents,
//! symbol table and postings table are intact, and the tombstones file's checksum matches. Errors name
//! the file and, where there is one, the byte offset. A series entry or chunk that turns out damaged later
//! fails the query that reads it, not the whole database.
//!
//! Selection hides deleted samples: a chunk entirely inside a tombstone interval is skipped, a chunk
//! partly inside is decoded and re-encoded without them. It does not own merging blocks with each other
//! or with the head ([`crate::read`], [`crate::Querier`]).

use std::path::{Path, PathBuf};
use std::sync::Arc;

use ember_index::block::{ChunkMeta, IndexReader, SeriesPairs};
use ember_index::{Labels, Matcher};
use memmap2::Mmap;

use super::dir::dir_size;
use super::writer::index_err;
use super::{BlockMeta, CHUNKS_DIRNAME, INDEX_FILENAME};
use crate::chunkenc::ENCODING_XOR;
use crate::chunks::reader::ChunkPos;
use crate::chunks::{ChunkReader, ChunkRef};
use crate::error::{Error, Result};
use crate::label_key::{EntryKey, Keys};
use crate::read::Series;
use crate::read::{BlockPart, ChunkData, ChunkFailure, SeriesChunk, decode_chunk, reencode};
use crate::tombstones::{Interval, Tombstones};

/// A block opened for reading. Shared (`Arc`) between the database and the queries that use it; the
/// files stay mapped until the last user drops it, even if the block is deleted meanwhile.
pub struct Block {
    dir: PathBuf,
    meta: BlockMeta,
    chunks: Arc<ChunkReader>,
    index: IndexReader<Mmap>,
    index_path: PathBuf,
    tombstones: Tombstones,
    size: u64,
}

impl std::fmt::Debug for Block {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Block")
            .field("dir", &self.dir)
            .field("ulid", &self.meta.ulid)
            .field("min_time", &self.meta.min_time)
            .field("max_time", &self.meta.max_time)
            .finish()
    }
}

impl Block {
    /// Opens the block in `dir` (see the module documentation for what is checked).
    pub fn open(dir: impl AsRef<Path>) -> Result<Block> {
        let dir = dir.as_ref().to_path_buf();
        let meta = BlockMeta::read_from_dir(&dir)?;
        if let Some(name) = dir.file_name().and_then(|n| n.to_str())
            && name != meta.ulid.to_string()
        {
            return Err(Error::InvalidMeta {
                path: dir.join(super::META_FILENAME),
                reason: format!(
                    "ulid {} does not match the block directory's name {name}",
                    meta.ulid
                ),
            });
        }
        let chunks = Arc::new(ChunkReader::open(dir.join(CHUNKS_DIRNAME))?);
        let index_path = dir.join(INDEX_FILENAME);
        let index = IndexReader::open(&index_path).map_err(|e| index_err(&index_path, e))?;
        let tombstones = Tombstones::read_from_dir(&dir)?;
        let size = dir_size(&dir);
        Ok(Block {
            dir,
            meta,
            chunks,
            index,
            index_path,
            tombstones,
            size,
        })
    }

    pub fn meta(&self) -> &BlockMeta {
        &self.meta
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes of the block's files on disk.
    pub fn size(&self) -> u64 {
        self.size
    }

    pub fn tombstones(&self) -> &Tombstones {
        &self.tombstones
    }

    /// Whether the block may hold samples in `[mint, maxt]` (the block's own range is half-open).
    pub fn overlaps(&self, mint: i64, maxt: i64) -> bool {
        self.meta.min_time <= maxt && mint < self.meta.max_time
    }

    pub(crate) fn refs(&self, matchers: &[Matcher]) -> Result<Vec<u64>> {
        let r = if matchers.is_empty() {
            self.index.all_postings()
        } else {
            self.index.postings_for_matchers(matchers)
        };
        r.map_err(|e| index_err(&self.index_path, e))
    }

    /// Lets queries keep this block's decoded chunks in `cache`.
    pub(crate) fn use_decoded_cache(&self, cache: &Arc<crate::chunks::DecodedChunkCache>) {
        self.chunks.use_decoded_cache(cache);
    }

    /// Series matching all `matchers` (every series when empty) with samples in `[mint, maxt]`, sorted by
    /// labels. Deleted samples are hidden.
    pub fn select(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<Series>> {
        self.select_refs(self.refs(matchers)?, mint, maxt)
    }

    /// [`Block::select`] for the series `refs` (from [`Block::refs`]), so a caller can look at how
    /// many series a selection holds before decoding their index entries.
    pub(crate) fn select_refs(&self, refs: Vec<u64>, mint: i64, maxt: i64) -> Result<Vec<Series>> {
        let mut out = Vec::with_capacity(refs.len());
        let mut metas = Vec::new();
        for r in refs {
            let mut labels = Labels::empty();
            self.index
                .series(r, &mut labels, &mut metas)
                .map_err(|e| index_err(&self.index_path, e))?;
            let chunks = self.chunks_for(r, &metas, mint, maxt);
            if !chunks.is_empty() {
                out.push(Series::new(labels, chunks, mint, maxt));
            }
        }
        if !out.windows(2).all(|w| w[0].labels() < w[1].labels()) {
            out.sort_by(|a, b| a.labels().cmp(b.labels()));
        }
        Ok(out)
    }

    /// [`Block::select_refs`] split against `known`, the head's selection (sorted by labels, with
    /// its keys when it has them): a series the head also holds is recognised from the index's
    /// borrowed strings and only its chunks are taken, by the head series' position; only the
    /// others get a label set built.
    pub(crate) fn select_refs_against(
        &self,
        known: &[Series],
        keys: Option<&Keys>,
        refs: Vec<u64>,
        mint: i64,
        maxt: i64,
    ) -> Result<BlockPart> {
        let mut part = BlockPart {
            known: Vec::with_capacity(refs.len().min(known.len())),
            chunks: Vec::with_capacity(refs.len().min(known.len()) * 2),
            others: Vec::new(),
        };
        let mut sp = SeriesPairs::default();
        let mut metas = Vec::new();
        let mut k = 0;
        let mut key = EntryKey::default();
        for r in refs {
            self.index
                .series_pairs(r, &mut sp, &mut metas)
                .map_err(|e| index_err(&self.index_path, e))?;
            let pairs = sp.pairs();
            // Spelled for every entry, so that the next one can keep what it shares.
            let spelled = keys.is_some() && key.spell(pairs, sp.unchanged());
            // Straight into the part's chunks: most entries are the head's series and stay there.
            let from = part.chunks.len();
            self.chunks_into(r, &metas, mint, maxt, &mut part.chunks);
            if part.chunks.len() == from {
                continue;
            }
            let keys = keys.filter(|_| spelled);
            let vs = |i: usize| known_vs_entry(keys, &key, i, known[i].labels(), pairs);
            if seek_known(&mut k, known.len(), vs) {
                part.known.push((k, part.chunks.len() - from));
                continue;
            }
            let chunks: Vec<SeriesChunk> = part.chunks.drain(from..).collect();
            // Not at the current position: build the set (which validates it).
            let labels =
                Labels::from_pairs(pairs.iter().copied()).map_err(|e| Error::CorruptFile {
                    path: self.index_path.clone(),
                    offset: r.saturating_mul(16),
                    reason: format!("series labels invalid: {e}"),
                })?;
            // An entry out of label order or not in canonical form (possible only from a foreign
            // writer) may still be in `known`, behind the position: look it up exactly.
            let behind = k > 0 && vs(k - 1).is_ge();
            if (behind || !canonical(pairs))
                && let Ok(pos) = known.binary_search_by(|s| s.labels().cmp(&labels))
            {
                part.push_known(pos, chunks);
                continue;
            }
            part.others.push(Series::new(labels, chunks, mint, maxt));
        }
        part.settle_order();
        Ok(part)
    }

    /// The label sets [`Block::select`] would return, without their chunks.
    pub fn select_labels(&self, matchers: &[Matcher], mint: i64, maxt: i64) -> Result<Vec<Labels>> {
        self.select_labels_refs(self.refs(matchers)?, mint, maxt)
    }

    /// The label sets of the series `refs` (from [`Block::refs`]) that live in `[mint, maxt]` and are
    /// not in `known` (sorted, unique; with its keys when it has them), sorted and unique. A series
    /// already in `known` is recognised from the index's borrowed strings, without building its
    /// label set: listing series over the head and its blocks mostly finds the same series in each,
    /// and building the duplicates was most of the cost.
    pub(crate) fn labels_not_in(
        &self,
        known: &[Labels],
        keys: Option<&Keys>,
        refs: Vec<u64>,
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<Labels>> {
        let m = self.meta();
        let whole = self.tombstones.is_empty() && mint <= m.min_time && maxt >= m.max_time - 1;
        if !whole {
            let mut mine = self.select_labels_refs(refs, mint, maxt)?;
            mine.retain(|l| known.binary_search(l).is_err());
            return Ok(mine);
        }
        let mut out: Vec<Labels> = Vec::new();
        let mut k = 0;
        let mut sp = SeriesPairs::default();
        let mut key = EntryKey::default();
        for r in refs {
            let chunks = self
                .index
                .series_label_pairs(r, &mut sp)
                .map_err(|e| index_err(&self.index_path, e))?;
            let pairs = sp.pairs();
            // Spelled for every entry, so that the next one can keep what it shares.
            let spelled = keys.is_some() && key.spell(pairs, sp.unchanged());
            if chunks == 0 {
                continue;
            }
            let keys = keys.filter(|_| spelled);
            let vs = |i: usize| known_vs_entry(keys, &key, i, &known[i], pairs);
            if seek_known(&mut k, known.len(), vs) {
                continue;
            }
            // Not known: build it (which validates it).
            let l = Labels::from_pairs(pairs.iter().copied()).map_err(|e| Error::CorruptFile {
                path: self.index_path.clone(),
                offset: r.saturating_mul(16),
                reason: format!("series labels invalid: {e}"),
            })?;
            out.push(l);
        }
        // A stored set out of label order or not in canonical form (possible only from a foreign
        // writer) may have slipped past the forward-only check: settle it exactly.
        if !out.windows(2).all(|w| w[0] < w[1]) {
            out.sort();
            out.dedup();
        }
        out.retain(|l| known.binary_search(l).is_err());
        Ok(out)
    }

    /// [`Block::select_labels`] for the series `refs` (from [`Block::refs`]).
    pub(crate) fn select_labels_refs(
        &self,
        refs: Vec<u64>,
        mint: i64,
        maxt: i64,
    ) -> Result<Vec<Labels>> {
        // A block wholly inside the range without deletions: every series with a chunk is live, so
        // the chunk references need not be decoded at all.
        let m = self.meta();
        if self.tombstones.is_empty() && mint <= m.min_time && maxt >= m.max_time - 1 {
            let mut out = Vec::with_capacity(refs.len());
            for r in refs {
                let mut labels = Labels::empty();
                let chunks = self
                    .index
                    .series_labels(r, &mut labels)
                    .map_err(|e| index_err(&self.index_path, e))?;
                if chunks > 0 {
                    out.push(labels);
                }
            }
            if !out.is_sorted() {
                out.sort();
            }
            return Ok(out);
        }
        let mut out = Vec::with_capacity(refs.len());
        let mut metas = Vec::new();
        for r in refs {
            let mut labels = Labels::empty();
            self.index
                .series(r, &mut labels, &mut metas)
                .map_err(|e| index_err(&self.index_path, e))?;
            let deleted = self.tombstones.get(r);
            let live = metas.iter().any(|m| {
                m.max_time >= mint
                    && m.min_time <= maxt
                    && !Interval::new(m.min_time, m.max_time).is_subrange_of(deleted)
            });
            if live {
                out.push(labels);
            }
        }
        // Series are stored in label order, so postings (ascending references) already give sorted
        // label sets; sort only what a foreign writer left unsorted.
        if !out.is_sorted() {
            out.sort();
        }
        Ok(out)
    }

    /// The intervals a deletion of `[mint, maxt]` adds for the series matching `matchers`, as
    /// Prometheus' `Block.Delete` chooses them: only series with a chunk overlapping the range, each
    /// interval clamped to the span of the series' chunks.
    pub(crate) fn deletion(
        &self,
        matchers: &[Matcher],
        mint: i64,
        maxt: i64,
    ) -> Result<Tombstones> {
        let mut out = Tombstones::new();
        let mut metas = Vec::new();
        let mut labels = Labels::empty();
        for r in self.refs(matchers)? {
            self.index
                .series(r, &mut labels, &mut metas)
                .map_err(|e| index_err(&self.index_path, e))?;
            let (Some(first), Some(last)) = (metas.first(), metas.last()) else {
                continue;
            };
            if metas
                .iter()
                .any(|m| m.min_time <= maxt && mint <= m.max_time)
            {
                out.add(
                    r,
                    Interval::new(mint.max(first.min_time), maxt.min(last.max_time)),
                );
            }
        }
        Ok(out)
    }

    /// Label names (sorted) of the series matching `matchers` (all series when empty).
    pub fn label_names(&self, matchers: &[Matcher]) -> Result<Vec<String>> {
        self.index
            .label_names(matchers)
            .map_err(|e| index_err(&self.index_path, e))
    }

    /// Values (sorted) of label `name` among the series matching `matchers` (all series when empty).
    pub fn label_values(&self, name: &str, matchers: &[Matcher]) -> Result<Vec<String>> {
        self.index
            .label_values(name, matchers)
            .map_err(|e| index_err(&self.index_path, e))
    }

    /// The chunks of series `r` overlapping `[mint, maxt]`, deleted samples removed. A chunk that cannot
    /// be read becomes a failed chunk: the query reading it reports the error.
    fn chunks_for(&self, r: u64, metas: &[ChunkMeta], mint: i64, maxt: i64) -> Vec<SeriesChunk> {
        let mut out = Vec::with_capacity(metas.len());
        self.chunks_into(r, metas, mint, maxt, &mut out);
        out
    }

    /// [`Block::chunks_for`], appended to `out`.
    fn chunks_into(
        &self,
        r: u64,
        metas: &[ChunkMeta],
        mint: i64,
        maxt: i64,
        out: &mut Vec<SeriesChunk>,
    ) {
        let deleted = self.tombstones.get(r);
        for m in metas {
            if m.max_time < mint || m.min_time > maxt {
                continue;
            }
            let span = Interval::new(m.min_time, m.max_time);
            if span.is_subrange_of(deleted) {
                continue;
            }
            let c = SeriesChunk {
                min_t: m.min_time,
                max_t: m.max_time,
                data: self.chunk_data(ChunkRef(m.chunk_ref)),
            };
            if deleted
                .iter()
                .any(|d| d.mint <= m.max_time && m.min_time <= d.maxt)
            {
                let mut buf = Vec::new();
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
            } else {
                out.push(c);
            }
        }
    }

    fn chunk_dir(&self) -> PathBuf {
        self.dir.join(CHUNKS_DIRNAME)
    }

    fn chunk_data(&self, r: ChunkRef) -> ChunkData {
        match self.chunks.locate(r) {
            Ok(ChunkPos::Mapped {
                encoding: ENCODING_XOR,
                start,
                len,
            }) => ChunkData::Mapped {
                reader: self.chunks.clone(),
                segment: r.segment(),
                start,
                len,
            },
            Ok(ChunkPos::Owned {
                encoding: ENCODING_XOR,
                data,
            }) => ChunkData::Mem(data),
            Ok(ChunkPos::Mapped { encoding: enc, .. } | ChunkPos::Owned { encoding: enc, .. }) => {
                ChunkData::Failed(Arc::new(ChunkFailure {
                    path: self
                        .chunks
                        .segment_path(r.segment())
                        .map(Path::to_path_buf)
                        .unwrap_or_else(|| self.chunk_dir()),
                    offset: u64::from(r.offset()),
                    reason: format!("chunk encoding {enc} is not supported (only XOR floats)"),
                }))
            }
            Err(e) => ChunkData::Failed(ChunkFailure::from_error(&e, self.chunk_dir())),
        }
    }
}

/// Whether stored label pairs are in the form a [`Labels`] built from them keeps (names strictly
/// ascending, no empty value), so that comparing the pairs is comparing that set.
fn canonical(pairs: &[(&str, &str)]) -> bool {
    pairs.windows(2).all(|w| w[0].0 < w[1].0) && pairs.iter().all(|p| !p.1.is_empty())
}

/// How known label set `i` (`labels`) orders against a block entry spelled `pairs`: by keys when
/// both are spelled (`keys` given; one memcmp), else pair by pair.
fn known_vs_entry(
    keys: Option<&Keys>,
    key: &EntryKey,
    i: usize,
    labels: &Labels,
    pairs: &[(&str, &str)],
) -> std::cmp::Ordering {
    match keys {
        Some(ks) => ks.get(i).cmp(key.get()),
        None => labels
            .iter()
            .map(|l| (l.name.as_str(), l.value.as_str()))
            .cmp(pairs.iter().copied()),
    }
}

/// Moves `k` past the known sets (`len` of them, sorted) that order before the entry (`vs`, as
/// [`known_vs_entry`]); whether the set at `k` is the entry's. Entries come in label order, so
/// `k` only moves forward across one block's entries.
fn seek_known(k: &mut usize, len: usize, vs: impl Fn(usize) -> std::cmp::Ordering) -> bool {
    while *k < len && vs(*k).is_lt() {
        *k += 1;
    }
    *k < len && vs(*k).is_eq()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::chunkenc::XorAppender;
    use crate::chunks::ChunkWriter;
    use ember_index::block::IndexWriter;

    #[test]
    fn a_chunk_in_another_encoding_fails_its_series_with_a_clear_error() {
        let parent = tempfile::tempdir().unwrap();
        let mut meta = BlockMeta::new(0, 1_000);
        let dir = parent.path().join(meta.ulid.to_string());
        let mut cw = ChunkWriter::create(dir.join(CHUNKS_DIRNAME)).unwrap();
        let mut app = XorAppender::new();
        app.append(10, 1.0);
        app.append(20, 2.0);
        let xor = cw.write_chunk(ENCODING_XOR, &app.into_bytes()).unwrap();
        // Encoding 2 is a native-histogram chunk in Prometheus; Ember does not decode those.
        let hist = cw.write_chunk(2, &[0, 1, 2, 3]).unwrap();
        cw.finish().unwrap();
        let (a, b) = (
            Labels::from_pairs([("k", "a")]).unwrap(),
            Labels::from_pairs([("k", "b")]).unwrap(),
        );
        let mut iw = IndexWriter::create(&dir.join(INDEX_FILENAME)).unwrap();
        for s in ["a", "b", "k"] {
            iw.add_symbol(s).unwrap();
        }
        let m = |r: ChunkRef| ChunkMeta {
            min_time: 10,
            max_time: 20,
            chunk_ref: r.0,
        };
        iw.add_series(&a, &[m(xor)]).unwrap();
        iw.add_series(&b, &[m(hist)]).unwrap();
        iw.close().unwrap();
        Tombstones::new().write_to_dir(&dir).unwrap();
        meta.write_to_dir(&dir).unwrap();

        let block = Block::open(&dir).unwrap();
        let got = block.select(&[], 0, 999).unwrap();
        assert_eq!(got.len(), 2);
        assert_eq!(got[0].samples().unwrap(), vec![(10, 1.0), (20, 2.0)]);
        match got[1].samples() {
            Err(Error::CorruptFile {
                path,
                offset,
                reason,
            }) => {
                assert_eq!(path, dir.join(CHUNKS_DIRNAME).join("000001"));
                assert_eq!(offset, u64::from(hist.offset()));
                assert!(reason.contains("encoding 2"), "{reason}");
            }
            other => panic!("expected an unsupported-encoding error, got {other:?}"),
        }
        assert_eq!(block.label_values("k", &[]).unwrap(), vec!["a", "b"]);
        assert!(block.overlaps(999, 2_000) && !block.overlaps(1_000, 2_000));
    }

    #[test]
    fn a_block_whose_meta_names_another_ulid_is_refused() {
        let parent = tempfile::tempdir().unwrap();
        let mut meta = BlockMeta::new(0, 1_000);
        let dir = parent.path().join(ulid::Ulid::new().to_string());
        std::fs::create_dir_all(dir.join(CHUNKS_DIRNAME)).unwrap();
        meta.write_to_dir(&dir).unwrap();
        let err = Block::open(&dir).unwrap_err();
        assert!(
            matches!(&err, Error::InvalidMeta { reason, .. } if reason.contains("does not match")),
            "{err}"
        );
    }
}
