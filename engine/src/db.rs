//! The database handle: opening a data directory, handing out appenders and queriers, truncating the head
//! with a WAL checkpoint, compaction and retention, and closing.
//!
//! Owns the data directory's layout (`wal/`, `chunks_head/`, the `lock` file, one directory per block),
//! the order of start-up (lock, remove leftovers of interrupted block writes, load blocks and delete
//! those replaced by a compacted block or past retention, load the head chunk files, replay the WAL for
//! what neither a block nor a head chunk file holds, then open the WAL for writing), and the set of loaded blocks that queries read together with the head. It does not own the
//! block file formats ([`crate::block`]) nor the compaction planner ([`crate::compact`]).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ember_index::{Labels, Matcher};
use ember_wal::{Compression, SyncPolicy, Wal, WalOptions};
use parking_lot::{Mutex, RwLock};
use ulid::Ulid;

use crate::appender::Appender;
use crate::block::reader::Block;
use crate::block::writer::{SeriesToWrite, write_block};
use crate::block::{BlockMeta, dir as blockdir};
use crate::chunks::{DecodedCacheStats, DecodedChunkCache};
use crate::chunks_head::{HeadChunks, HeadChunksLoad};
use crate::compact::plan;
use crate::error::{Error, Result};
use crate::head::replay::{self, MappedIndex, ReplayStats};
use crate::head::series::{ChunkOpts, range_for_timestamp};
use crate::head::{Head, HeadMemory};
use crate::read::{Series, merge_blocks_into_head, merge_series_lists};

/// How a database is opened. `Options::default()` matches Prometheus' defaults where one exists.
#[derive(Clone, Debug)]
pub struct Options {
    /// Maximum size of one WAL segment file (Prometheus: 128 MiB).
    pub wal_segment_size: usize,
    /// Compress WAL records with zstd.
    pub wal_compression: bool,
    /// When a commit's WAL write is fsynced. The embedded default is every commit: a commit that returned
    /// survives power loss. Prometheus itself never fsyncs on commit; `SyncPolicy::Interval` comes close to
    /// that at lower cost.
    pub wal_sync: SyncPolicy,
    /// Width of the head's chunk range in milliseconds (the block range; Prometheus: 2 h). No chunk crosses
    /// a multiple of it, and samples older than half of it behind the newest sample are out of bounds.
    pub block_range_ms: i64,
    /// Target samples per chunk (Prometheus: 120).
    pub samples_per_chunk: u16,
    /// Cut the WAL at a corruption that is not a torn tail instead of refusing to open. Everything before
    /// the damage is kept; what follows it is lost.
    pub repair_wal: bool,
    /// Most series the head may hold (`None`: no limit). Appends that would create a series beyond it fail
    /// with [`Error::HeadSeriesLimit`]; existing series keep ingesting. A restart never drops series that
    /// were already acknowledged, even if there are more than the limit.
    pub head_series_limit: Option<u64>,
    /// Blocks whose newest sample is this much older than the newest block's are deleted (Prometheus'
    /// `--storage.tsdb.retention.time`, default 15 d). 0 disables time retention.
    pub retention_ms: i64,
    /// The oldest blocks are deleted while blocks, WAL and head chunk files take more bytes than this
    /// (Prometheus' `--storage.tsdb.retention.size`). `None` disables size retention.
    pub retention_bytes: Option<u64>,
    /// Largest block leveled compaction builds (`None`: 31 d, or a tenth of `retention_ms` when smaller).
    pub max_block_duration_ms: Option<i64>,
    /// A block that fails to open is skipped with a logged error instead of failing [`Db::open`].
    /// Prometheus refuses to start; so does Ember by default.
    pub skip_corrupt_blocks: bool,
    /// Blocks written by compaction (level 2 and up) store their chunks in Ember's zstd-compressed
    /// segments (`docs/format/chunk_segments.md`): fewer bytes, but Prometheus and promtool cannot read
    /// those blocks. Blocks cut from the head stay in Prometheus' format.
    pub compress_compacted_chunks: bool,
    /// Write completed head chunks to `chunks_head/` and read them through memory maps, as Prometheus
    /// does since 2.19: the head keeps a small reference per chunk instead of its bytes, and a restart
    /// attaches those chunks instead of rebuilding them from the WAL. Off: closed chunks stay in RAM
    /// (existing files are then left alone and the WAL replays everything).
    pub mmap_head_chunks: bool,
    /// Bytes of decoded block chunks kept for later queries (`crate::chunks::DecodedChunkCache`):
    /// repeated range queries over blocks (dashboard refreshes) copy samples instead of decoding
    /// them again. 0 disables the cache. Filled only by queries, with block chunks and the head's
    /// memory-mapped chunks (the chunk still being appended to is decoded every time).
    pub decoded_chunk_cache_bytes: usize,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            wal_segment_size: 128 << 20,
            wal_compression: false,
            wal_sync: SyncPolicy::EveryCommit,
            block_range_ms: 2 * 3600 * 1000,
            samples_per_chunk: 120,
            repair_wal: false,
            head_series_limit: None,
            retention_ms: 15 * 24 * 3600 * 1000,
            retention_bytes: None,
            max_block_duration_ms: None,
            skip_corrupt_blocks: false,
            compress_compacted_chunks: false,
            mmap_head_chunks: true,
            decoded_chunk_cache_bytes: 64 << 20,
        }
    }
}

pub(crate) struct DbInner {
    pub(crate) dir: PathBuf,
    pub(crate) head: Head,
    pub(crate) wal: Wal,
    pub(crate) opts: Options,
    /// Loaded blocks, sorted by `min_time`. Replaced as a whole, so a query takes a consistent set.
    pub(crate) blocks: RwLock<Arc<Vec<Arc<Block>>>>,
    /// Serialises compaction, retention and block reloads.
    pub(crate) compact_lock: Mutex<()>,
    /// Held shared by every commit from its bounds check until its samples are in the head, and taken
    /// exclusively by head compaction after it raised the head's floor: once compaction holds it, no
    /// commit that checked against the old floor is still applying samples to the range being written.
    pub(crate) commit_gate: RwLock<()>,
    /// Decoded block chunks shared by all queries; `None` when disabled.
    pub(crate) decoded: Option<Arc<DecodedChunkCache>>,
    closed: AtomicBool,
    _lock: File,
}

impl DbInner {
    pub(crate) fn is_closed(&self) -> bool {
        self.closed.load(Ordering::Acquire)
    }
}

/// An open database. Cheap to clone; all clones share one head and WAL.
#[derive(Clone)]
pub struct Db {
    pub(crate) inner: Arc<DbInner>,
    replay: Arc<ReplayStats>,
}

/// Point-in-time figures about the head.
#[derive(Debug, Clone)]
pub struct DbStats {
    pub num_series: u64,
    /// Oldest and newest sample time, `None` while the head is empty.
    pub time_range: Option<(i64, i64)>,
    pub samples_appended: u64,
    pub out_of_order_samples: u64,
    pub series_created: u64,
    pub series_removed: u64,
    /// New series refused by the head series limit.
    pub series_refused: u64,
    /// Approximate heap bytes held by the head, by component.
    pub memory: HeadMemory,
    /// Loaded blocks and the bytes of their files.
    pub blocks: usize,
    pub blocks_bytes: u64,
    /// Head chunk files in `chunks_head/`, chunks this process wrote to them, and writes that failed
    /// (those chunks stayed in memory).
    pub head_chunk_files: usize,
    pub head_chunks_written: u64,
    pub head_chunk_write_errors: u64,
}

impl Db {
    /// Opens (or creates) the database in `dir`, replaying its WAL. Fails if another process holds it.
    pub fn open(dir: impl AsRef<Path>, opts: Options) -> Result<Db> {
        let dir = dir.as_ref().to_path_buf();
        let io = |path: &Path| {
            let path = path.to_path_buf();
            move |source| Error::Io { path, source }
        };
        std::fs::create_dir_all(&dir).map_err(io(&dir))?;
        let lock_path = dir.join("lock");
        let lock = File::options()
            .create(true)
            .truncate(false)
            .write(true)
            .open(&lock_path)
            .map_err(io(&lock_path))?;
        // A lock can also be held for a moment by a child process that another thread of this
        // process is starting: it inherits the descriptor between fork and exec, while the handle
        // that closed it is already gone. Retry briefly before calling the directory taken.
        let mut tries = 0;
        let locked = loop {
            match lock.try_lock() {
                Err(std::fs::TryLockError::WouldBlock) if tries < 10 => {
                    tries += 1;
                    std::thread::sleep(std::time::Duration::from_millis(10));
                }
                r => break r,
            }
        };
        locked.map_err(|e| Error::Io {
            path: lock_path.clone(),
            source: match e {
                std::fs::TryLockError::Error(e) => e,
                std::fs::TryLockError::WouldBlock => std::io::Error::new(
                    std::io::ErrorKind::WouldBlock,
                    "the data directory is locked by another process",
                ),
            },
        })?;
        blockdir::remove_tmp_dirs(&dir)?;
        let blocks = load_blocks(&dir, &opts)?;
        let started = std::time::Instant::now();
        let (disk, mapped, chunks_load) = if opts.mmap_head_chunks {
            let mut found = Vec::new();
            let (disk, load) = HeadChunks::open(&dir, |c| found.push(c))?;
            (Some(disk), MappedIndex::new(found), load)
        } else {
            (None, MappedIndex::default(), HeadChunksLoad::default())
        };
        let decoded = (opts.decoded_chunk_cache_bytes > 0)
            .then(|| Arc::new(DecodedChunkCache::new(opts.decoded_chunk_cache_bytes)));
        if let (Some(d), Some(c)) = (&disk, &decoded) {
            d.use_decoded_cache(c);
        }
        let head = Head::new(
            ChunkOpts {
                chunk_range: opts.block_range_ms.max(1),
                samples_per_chunk: opts.samples_per_chunk.max(4),
            },
            opts.head_series_limit.unwrap_or(u64::MAX),
            disk,
        );
        head.reserve_refs_below(chunks_load.max_series_ref.saturating_add(1));
        // What a block holds is never in the head: the WAL may still hold it if the process stopped
        // between writing a block and checkpointing the WAL.
        let blocks_end = blocks.iter().map(|b| b.meta().max_time).max();
        if let Some(end) = blocks_end {
            head.raise_min_valid(end);
        }
        let wal_dir = dir.join("wal");
        let mut stats = replay::replay(&head, &wal_dir, opts.repair_wal, &mapped)?;
        drop(mapped);
        stats.head_chunks = chunks_load;
        if let Some(end) = blocks_end {
            // Series whose samples were all in blocks are left empty by replay.
            head.truncate(end);
        }
        tracing::info!(?stats, elapsed = ?started.elapsed(), "WAL replay done");
        let wal = Wal::open(
            &wal_dir,
            WalOptions {
                segment_size: opts.wal_segment_size,
                compression: if opts.wal_compression {
                    Compression::Zstd
                } else {
                    Compression::None
                },
                sync: opts.wal_sync,
            },
        )?;
        Ok(Db {
            inner: Arc::new(DbInner {
                dir,
                head,
                wal,
                opts: opts.clone(),
                blocks: RwLock::new(Arc::new(blocks)),
                compact_lock: Mutex::new(()),
                commit_gate: RwLock::new(()),
                decoded,
                closed: AtomicBool::new(false),
                _lock: lock,
            }),
            replay: Arc::new(stats),
        })
    }

    /// Use of the decoded-chunk cache (`None` when `Options::decoded_chunk_cache_bytes` is 0).
    pub fn decoded_cache_stats(&self) -> Option<DecodedCacheStats> {
        self.inner.decoded.as_ref().map(|c| c.stats())
    }

    /// A new appender. Appenders are independent; many may be used from many threads at once.
    pub fn appender(&self) -> Appender {
        Appender::new(self.inner.clone())
    }

    /// A querier over `[mint, maxt]` (milliseconds, inclusive).
    pub fn querier(&self, mint: i64, maxt: i64) -> Querier {
        Querier {
            db: self.inner.clone(),
            mint,
            maxt,
        }
    }

    /// What the last open's WAL replay found.
    pub fn replay_stats(&self) -> &ReplayStats {
        &self.replay
    }

    pub fn dir(&self) -> &Path {
        &self.inner.dir
    }

    pub fn options(&self) -> &Options {
        &self.inner.opts
    }

    pub fn stats(&self) -> DbStats {
        let h = &self.inner.head;
        let (mint, maxt) = (h.min_time(), h.max_time());
        let blocks = self.inner.blocks.read().clone();
        DbStats {
            num_series: h.num_series(),
            time_range: (mint <= maxt).then_some((mint, maxt)),
            samples_appended: h.stats.samples_appended.load(Ordering::Relaxed),
            out_of_order_samples: h.stats.out_of_order_samples.load(Ordering::Relaxed),
            series_created: h.stats.series_created.load(Ordering::Relaxed),
            series_removed: h.stats.series_removed.load(Ordering::Relaxed),
            series_refused: h.stats.series_refused.load(Ordering::Relaxed),
            memory: h.memory(),
            blocks: blocks.len(),
            blocks_bytes: blocks.iter().map(|b| b.size()).sum(),
            head_chunk_files: h.disk().map_or(0, |d| d.file_count()),
            head_chunks_written: h
                .disk()
                .map_or(0, |d| d.stats.chunks_written.load(Ordering::Relaxed)),
            head_chunk_write_errors: h
                .disk()
                .map_or(0, |d| d.stats.write_errors.load(Ordering::Relaxed)),
        }
    }

    /// Drops every sample older than `mint` from the head, removes series left empty, and checkpoints the
    /// WAL so that replay no longer reads what was dropped: the log is rolled to a new segment, every
    /// complete segment is folded into `checkpoint.N` (keeping only live series and samples at or after
    /// `mint`), and the folded segments are deleted. Head compaction calls it after writing a block; samples
    /// dropped here without a block holding them are gone.
    pub fn truncate_head(&self, mint: i64) -> Result<TruncateStats> {
        let inner = &self.inner;
        let h = inner.head.truncate(mint);
        let wal_dir = inner.dir.join("wal");
        let current = inner.wal.next_segment()?;
        let mut out = TruncateStats {
            series_removed: h.series_removed,
            chunks_removed: h.chunks_removed,
            chunk_files_removed: h.chunk_files_removed,
            ..Default::default()
        };
        if let Some((first, _)) = Wal::segment_range(&wal_dir)?
            && first < current
        {
            let head = &inner.head;
            let keep = |r: u64| head.contains(r);
            let cp = ember_wal::checkpoint::checkpoint(
                &wal_dir,
                first,
                current - 1,
                &keep,
                mint,
                if inner.opts.wal_compression {
                    Compression::Zstd
                } else {
                    Compression::None
                },
            )?;
            inner.wal.truncate(current)?;
            out.checkpoint = Some(current - 1);
            out.checkpoint_series = cp.total_series - cp.dropped_series;
            out.checkpoint_samples = cp.total_samples - cp.dropped_samples;
        }
        Ok(out)
    }

    /// Flushes and fsyncs the WAL and releases the directory. Appenders that commit afterwards fail with
    /// [`Error::Closed`]. Other clones of this handle become closed too.
    pub fn close(self) -> Result<()> {
        self.inner.closed.store(true, Ordering::Release);
        self.inner.wal.sync()?;
        if let Some(disk) = self.inner.head.disk() {
            disk.sync()?;
        }
        Ok(())
    }
}

/// Head cardinality, as Prometheus' `/api/v1/status/tsdb` reports it: top entries by count.
#[derive(Debug, Default, Clone)]
pub struct Cardinality {
    pub series_count_by_metric_name: Vec<(String, u64)>,
    pub label_value_count_by_label_name: Vec<(String, u64)>,
    /// Bytes of label values per label name (value length times the series carrying it).
    pub memory_in_bytes_by_label_name: Vec<(String, u64)>,
    pub series_count_by_label_value_pair: Vec<(String, u64)>,
}

impl Db {
    /// The `top` largest entries of each cardinality statistic of the head.
    pub fn cardinality(&self, top: usize) -> Cardinality {
        let p = self.inner.head.postings.read();
        let mut c = Cardinality::default();
        let mut pairs = Vec::new();
        for name in p.label_names() {
            let values = p.label_values(&name);
            c.label_value_count_by_label_name
                .push((name.clone(), values.len() as u64));
            let mut bytes = 0u64;
            for v in values {
                let n = p.get(&name, &v).len() as u64;
                bytes += v.len() as u64 * n;
                if name == "__name__" {
                    c.series_count_by_metric_name.push((v.clone(), n));
                }
                pairs.push((format!("{name}={v}"), n));
            }
            c.memory_in_bytes_by_label_name.push((name, bytes));
        }
        c.series_count_by_label_value_pair = pairs;
        for list in [
            &mut c.series_count_by_metric_name,
            &mut c.label_value_count_by_label_name,
            &mut c.memory_in_bytes_by_label_name,
            &mut c.series_count_by_label_value_pair,
        ] {
            list.sort_by(|a, b| b.1.cmp(&a.1).then_with(|| a.0.cmp(&b.0)));
            list.truncate(top);
        }
        c
    }
}

/// What [`Db::truncate_head`] did.
#[derive(Debug, Default, Clone)]
pub struct TruncateStats {
    pub series_removed: usize,
    pub chunks_removed: usize,
    /// Head chunk files deleted because no series references a chunk in them any more.
    pub chunk_files_removed: usize,
    /// Index of the last segment folded into the new checkpoint, if one was written.
    pub checkpoint: Option<u32>,
    pub checkpoint_series: usize,
    pub checkpoint_samples: usize,
}

/// Reads series, samples and label metadata over a fixed time range, from the head and every block
/// overlapping it.
///
/// Each call reads the head first and then the current set of blocks, so a compaction that moves a range
/// from the head into a new block between the two reads is seen through the block; if both hold a
/// sample (the moment between writing a block and truncating the head), it is returned once.
pub struct Querier {
    db: Arc<DbInner>,
    mint: i64,
    maxt: i64,
}

impl Querier {
    /// The blocks overlapping the range, oldest ULID first (the merge priority: a newer block's sample
    /// wins at a timestamp both hold, and the head's wins over all).
    fn blocks(&self) -> Vec<Arc<Block>> {
        let all = self.db.blocks.read().clone();
        let mut bs: Vec<Arc<Block>> = all
            .iter()
            .filter(|b| b.overlaps(self.mint, self.maxt))
            .cloned()
            .collect();
        bs.sort_by_key(|b| b.meta().ulid);
        if let Some(cache) = &self.db.decoded {
            // Blocks are opened in several places (load, compaction, deletion); attaching here, where
            // every query finds its blocks, covers them all.
            for b in &bs {
                b.use_decoded_cache(cache);
            }
        }
        bs
    }

    /// Series matching every matcher that have samples in range, sorted by label set, one per label set
    /// across head and blocks. With no matchers, every series. A block whose index cannot be read is
    /// left out with a logged error; [`Querier::try_select`] reports it instead.
    pub fn select(&self, matchers: &[Matcher]) -> Vec<Series> {
        self.select_inner(matchers, false).unwrap_or_default()
    }

    /// [`Querier::select`], failing on the first block that cannot be read.
    pub fn try_select(&self, matchers: &[Matcher]) -> Result<Vec<Series>> {
        self.select_inner(matchers, true)
    }

    fn select_inner(&self, matchers: &[Matcher], strict: bool) -> Result<Vec<Series>> {
        // The head before the block list: a head compaction finishing in between then shows its
        // samples twice (merged away) rather than in neither place.
        let (head, keys) = self.db.head.select(matchers, self.mint, self.maxt);
        let blocks = self.blocks();
        if blocks.is_empty() {
            return Ok(head);
        }
        let (known, keys) = (&head, keys.as_ref());
        let from_blocks = per_block(&blocks, matchers, |b, refs| {
            b.select_refs_against(known, keys, refs, self.mint, self.maxt)
        });
        let mut parts = Vec::with_capacity(blocks.len());
        for (b, r) in blocks.iter().zip(from_blocks) {
            match r {
                Ok(p) => parts.push(p),
                Err(e) if strict => return Err(e),
                Err(e) => {
                    tracing::error!(block = %b.dir().display(), error = %e, "block left out of a query")
                }
            }
        }
        Ok(merge_blocks_into_head(head, parts, self.mint, self.maxt))
    }

    /// The label sets of the series [`Querier::select`] returns, in the same order, without their
    /// samples.
    pub fn select_labels(&self, matchers: &[Matcher]) -> Vec<Labels> {
        // The head first, as in `select_inner`.
        let (mut out, keys) = self.db.head.select_labels(matchers, self.mint, self.maxt);
        let blocks = self.blocks();
        let (known, keys) = (&out, keys.as_ref());
        let from_blocks = per_block(&blocks, matchers, |b, refs| {
            b.labels_not_in(known, keys, refs, self.mint, self.maxt)
        });
        for (b, r) in blocks.iter().zip(from_blocks) {
            match r {
                Ok(l) => out = merge_sorted_unique(out, l),
                Err(e) => {
                    tracing::error!(block = %b.dir().display(), error = %e, "block left out of a query")
                }
            }
        }
        out
    }

    /// Label names (sorted) of the series matching `matchers` (all series when empty).
    pub fn label_names(&self, matchers: &[Matcher]) -> Vec<String> {
        let mut out = {
            let p = self.db.head.postings.read();
            if matchers.is_empty() {
                p.label_names()
            } else {
                p.label_names_for(matchers)
            }
        };
        self.union_from_blocks(&mut out, |b| b.label_names(matchers));
        out
    }

    /// Values (sorted) of label `name` among the series matching `matchers` (all series when empty).
    pub fn label_values(&self, name: &str, matchers: &[Matcher]) -> Vec<String> {
        let mut out = {
            let p = self.db.head.postings.read();
            if matchers.is_empty() {
                p.label_values(name)
            } else {
                p.label_values_for(name, matchers)
            }
        };
        self.union_from_blocks(&mut out, |b| b.label_values(name, matchers));
        out
    }

    fn union_from_blocks(&self, out: &mut Vec<String>, f: impl Fn(&Block) -> Result<Vec<String>>) {
        let blocks = self.blocks();
        if blocks.is_empty() {
            return;
        }
        // Each source's list comes sorted and unique (a block's from its index, the head's from its
        // postings): merged rather than concatenated and sorted again, which compared every string
        // a dozen times.
        if !out.is_sorted() {
            out.sort_unstable();
            out.dedup();
        }
        for b in &blocks {
            match f(b) {
                Ok(mut v) => {
                    if !v.is_sorted() {
                        v.sort_unstable();
                        v.dedup();
                    }
                    *out = merge_sorted_unique(std::mem::take(out), v);
                }
                Err(e) => {
                    tracing::error!(block = %b.dir().display(), error = %e, "block left out of a query")
                }
            }
        }
        // A source listing a value twice would keep it twice through the merge.
        out.dedup();
    }

    pub fn mint(&self) -> i64 {
        self.mint
    }

    pub fn maxt(&self) -> i64 {
        self.maxt
    }
}

/// Opens the blocks in `dir`, then deletes those that are obsolete: listed as parent or source of another
/// loaded block (left behind by a compaction interrupted before it deleted them), marked deletable, or
/// past retention. A block that fails to open fails the whole open unless a loaded block replaces it or
/// `skip_corrupt_blocks` is set (then it is left on disk, unused, and logged); a directory without a
/// readable `meta.json` is skipped with a logged error either way, as Prometheus does.
fn load_blocks(dir: &Path, opts: &Options) -> Result<Vec<Arc<Block>>> {
    let (dirs, _) = blockdir::scan(dir)?;
    let mut loaded = Vec::new();
    let mut corrupted = Vec::new();
    for (ulid, path) in dirs {
        match Block::open(&path) {
            Ok(b) => loaded.push(Arc::new(b)),
            // Like Prometheus, a directory whose meta.json cannot be read is not taken for a block at
            // all: it is skipped with an error, never deleted.
            Err(e) if meta_unreadable(&e, &path) => {
                tracing::error!(dir = %path.display(), error = %e, "skipping a directory without a readable meta.json");
            }
            Err(e) => corrupted.push((ulid, e)),
        }
    }
    let mut obsolete = std::collections::HashSet::new();
    for b in &loaded {
        let c = &b.meta().compaction;
        obsolete.extend(c.parents.iter().map(|p| p.ulid));
        obsolete.extend(c.sources.iter().copied().filter(|&u| u != b.meta().ulid));
        if c.deletable {
            obsolete.insert(b.meta().ulid);
        }
    }
    for (ulid, e) in corrupted {
        if obsolete.contains(&ulid) {
            tracing::warn!(%ulid, error = %e, "unreadable block replaced by a compacted one; deleting it");
        } else if opts.skip_corrupt_blocks {
            tracing::error!(%ulid, error = %e, "skipping a block that cannot be opened");
        } else {
            return Err(e);
        }
    }
    loaded.retain(|b| !obsolete.contains(&b.meta().ulid));
    for ulid in obsolete {
        if blockdir::delete_block(dir, ulid)? {
            tracing::info!(%ulid, "deleted obsolete block");
        }
    }
    let doomed = beyond_retention(&loaded, opts, head_bytes(dir));
    loaded.retain(|b| !doomed.contains(&b.meta().ulid));
    for ulid in doomed {
        blockdir::delete_block(dir, ulid)?;
        tracing::info!(%ulid, "deleted block past retention");
    }
    loaded.sort_by_key(|b| (b.meta().min_time, b.meta().ulid));
    Ok(loaded)
}

fn meta_unreadable(e: &Error, block_dir: &Path) -> bool {
    match e {
        Error::InvalidMeta { .. } => true,
        Error::Io { path, .. } => *path == block_dir.join(crate::block::META_FILENAME),
        _ => false,
    }
}

/// What size retention counts for the head, as Prometheus' `Head.Size`: the WAL and the head chunk files.
fn head_bytes(dir: &Path) -> u64 {
    blockdir::dir_size(&dir.join("wal"))
        + blockdir::dir_size(&dir.join(crate::chunks_head::DIR_NAME))
}

/// Blocks to delete by time and size retention, as Prometheus decides: by time, every block whose end is
/// at least `retention_ms` before the newest block's end; by size, counting the head (WAL and chunk
/// files) first and then blocks from newest to oldest, the block that crosses the limit and every older
/// one.
fn beyond_retention(blocks: &[Arc<Block>], opts: &Options, wal_bytes: u64) -> Vec<Ulid> {
    let mut bs: Vec<&Arc<Block>> = blocks.iter().collect();
    bs.sort_by_key(|b| std::cmp::Reverse(b.meta().max_time));
    let mut out = Vec::new();
    if let (Some(newest), true) = (bs.first(), opts.retention_ms > 0) {
        let newest_end = newest.meta().max_time;
        if let Some(i) = bs
            .iter()
            .position(|b| newest_end.saturating_sub(b.meta().max_time) >= opts.retention_ms)
            .filter(|&i| i > 0)
        {
            out.extend(bs[i..].iter().map(|b| b.meta().ulid));
        }
    }
    if let Some(limit) = opts.retention_bytes {
        let mut total = wal_bytes;
        if let Some(i) = bs.iter().position(|b| {
            total = total.saturating_add(b.size());
            total > limit
        }) {
            out.extend(bs[i..].iter().map(|b| b.meta().ulid));
        }
    }
    out.sort();
    out.dedup();
    out
}

/// A background thread running [`Db::compact`] periodically, from [`Db::start_compactor`]. Dropping it
/// stops the thread (waiting for a compaction in progress to finish).
pub struct Compactor {
    stop: Arc<(Mutex<bool>, parking_lot::Condvar)>,
    thread: Option<std::thread::JoinHandle<()>>,
}

impl Drop for Compactor {
    fn drop(&mut self) {
        *self.stop.0.lock() = true;
        self.stop.1.notify_all();
        if let Some(t) = self.thread.take() {
            t.join().ok();
        }
    }
}

impl Db {
    /// Runs [`Db::compact`] every `every` on a background thread until the returned handle is dropped or
    /// the database is closed. Errors are logged and retried at the next tick. The thread does not keep
    /// the database open: it holds a weak reference.
    pub fn start_compactor(&self, every: std::time::Duration) -> Compactor {
        self.start_compactor_with(every, |_, _| {})
    }

    /// [`Db::start_compactor`], calling `on_pass` after each pass with its outcome and duration (a
    /// server counts them in its metrics). The first pass runs at once: a restarted process may find
    /// a head already due for compaction.
    pub fn start_compactor_with(
        &self,
        every: std::time::Duration,
        mut on_pass: impl FnMut(&Result<CompactStats>, std::time::Duration) + Send + 'static,
    ) -> Compactor {
        let weak = Arc::downgrade(&self.inner);
        let replay = self.replay.clone();
        let stop = Arc::new((Mutex::new(false), parking_lot::Condvar::new()));
        let stop2 = stop.clone();
        let thread = std::thread::Builder::new()
            .name("ember-compactor".into())
            .spawn(move || {
                loop {
                    let Some(inner) = weak.upgrade() else { return };
                    if inner.is_closed() {
                        return;
                    }
                    let db = Db {
                        inner,
                        replay: replay.clone(),
                    };
                    let started = std::time::Instant::now();
                    let outcome = db.compact();
                    // Not holding the database between passes: dropping every other handle closes it.
                    drop(db);
                    match &outcome {
                        Ok(s)
                            if !s.head_blocks.is_empty()
                                || !s.compacted_blocks.is_empty()
                                || !s.deleted_blocks.is_empty() =>
                        {
                            tracing::info!(?s, took = ?started.elapsed(), "compaction done")
                        }
                        Ok(_) | Err(Error::Closed) => {}
                        Err(e) => tracing::error!(error = %e, "compaction failed"),
                    }
                    on_pass(&outcome, started.elapsed());
                    let mut stopped = stop2.0.lock();
                    if !*stopped {
                        stop2.1.wait_for(&mut stopped, every);
                    }
                    if *stopped {
                        return;
                    }
                }
            })
            .expect("spawning the compactor thread");
        Compactor {
            stop,
            thread: Some(thread),
        }
    }
}

/// What [`Db::compact`] did.
#[derive(Debug, Default, Clone)]
pub struct CompactStats {
    /// Blocks cut from the head.
    pub head_blocks: Vec<Ulid>,
    /// Blocks written by merging blocks.
    pub compacted_blocks: Vec<Ulid>,
    /// Blocks deleted: replaced by a compacted block, or past retention.
    pub deleted_blocks: Vec<Ulid>,
}

impl Db {
    /// Metadata of the loaded blocks, by `min_time`.
    pub fn blocks(&self) -> Vec<BlockMeta> {
        self.inner
            .blocks
            .read()
            .iter()
            .map(|b| b.meta().clone())
            .collect()
    }

    /// The compaction ranges in use: the block range, then ×3 steps up to the largest block allowed.
    pub fn block_ranges(&self) -> Vec<i64> {
        let o = &self.inner.opts;
        let max = o
            .max_block_duration_ms
            .unwrap_or_else(|| crate::compact::default_max_block_duration(o.retention_ms));
        crate::compact::block_ranges(o.block_range_ms.max(1), max)
    }

    /// Runs every compaction that is due, then retention. Meant to be called periodically (the server
    /// does it every minute, as Prometheus does):
    ///
    /// 1. While the head spans more than 1.5 block ranges, its oldest block-range-aligned window is
    ///    written into a level-1 block and the head (and WAL) truncated at the window's end.
    /// 2. While the planner finds blocks to merge ([`crate::compact::plan`]), they are merged into one
    ///    block, which replaces them; overlapping blocks are merged sample by sample.
    /// 3. Blocks past time or size retention are deleted.
    ///
    /// Every block is written in a temporary directory, fsynced and renamed into place before anything
    /// it replaces is deleted, so a crash at any point loses nothing committed.
    pub fn compact(&self) -> Result<CompactStats> {
        let inner = &self.inner;
        if inner.is_closed() {
            return Err(Error::Closed);
        }
        let _guard = inner.compact_lock.lock();
        let mut stats = CompactStats::default();
        let range = inner.opts.block_range_ms.max(1);
        loop {
            let h = &inner.head;
            let (hmin, hmax) = (h.min_time(), h.max_time());
            if hmin > hmax || hmax.saturating_sub(hmin) <= range / 2 * 3 {
                break;
            }
            let maxt = range_for_timestamp(hmin, range);
            // New appenders already refuse this range (it is more than half a range behind the newest
            // sample). Raising the floor makes commits of older appenders refuse it too, and keeps
            // replay out of it; waiting for the gate lets commits that passed the old floor finish.
            h.raise_min_valid(maxt);
            drop(inner.commit_gate.write());
            let series = h.series_for_block(hmin, maxt - 1);
            let mut meta = BlockMeta::new(hmin, maxt);
            if let Some(path) = write_block(&inner.dir, &mut meta, series, false)? {
                let block = Arc::new(self.open_written(&path, meta.ulid)?);
                tracing::info!(ulid = %meta.ulid, mint = hmin, maxt, samples = meta.stats.num_samples, "head block written");
                self.swap_blocks(&[], Some(block));
                stats.head_blocks.push(meta.ulid);
            }
            self.truncate_head(maxt)?;
        }
        let ranges = self.block_ranges();
        loop {
            let metas = self.blocks();
            let chosen = plan::plan(&metas, &ranges);
            if chosen.is_empty() {
                break;
            }
            let (new, deleted) = self.compact_blocks(&chosen)?;
            stats.compacted_blocks.extend(new);
            stats.deleted_blocks.extend(deleted);
        }
        stats.deleted_blocks.extend(self.apply_retention()?);
        Ok(stats)
    }

    /// Replaces the blocks in `remove` with `add` in the loaded set.
    pub(crate) fn swap_blocks(&self, remove: &[Ulid], add: Option<Arc<Block>>) {
        let mut guard = self.inner.blocks.write();
        let mut next: Vec<Arc<Block>> = guard
            .iter()
            .filter(|b| !remove.contains(&b.meta().ulid))
            .cloned()
            .collect();
        next.extend(add);
        next.sort_by_key(|b| (b.meta().min_time, b.meta().ulid));
        *guard = Arc::new(next);
    }

    /// Merges the blocks `ulids` into one; returns the new block (if any sample was left) and the
    /// deleted parents. On failure the parents are marked `failed` so the planner moves on.
    fn compact_blocks(&self, ulids: &[Ulid]) -> Result<(Option<Ulid>, Vec<Ulid>)> {
        let inner = &self.inner;
        let current = inner.blocks.read().clone();
        let mut parents: Vec<Arc<Block>> = current
            .iter()
            .filter(|b| ulids.contains(&b.meta().ulid))
            .cloned()
            .collect();
        parents.sort_by_key(|b| b.meta().ulid);
        let metas: Vec<&BlockMeta> = parents.iter().map(|b| b.meta()).collect();
        let mut meta = crate::compact::compacted_meta(Ulid::new(), &metas);
        let (mint, maxt) = (meta.min_time, meta.max_time - 1);
        let written = parents
            .iter()
            .map(|b| b.select(&[], mint, maxt))
            .collect::<Result<Vec<_>>>()
            .and_then(|lists| {
                let series = merge_series_lists(lists, mint, maxt)
                    .into_iter()
                    .map(|s| {
                        let (labels, chunks) = s.into_parts();
                        SeriesToWrite { labels, chunks }
                    })
                    .collect();
                let zstd = inner.opts.compress_compacted_chunks;
                write_block(&inner.dir, &mut meta, series, zstd)
            });
        let path = match written {
            Ok(p) => p,
            Err(e) => {
                tracing::error!(error = %e, ?ulids, "compaction failed; marking its blocks failed");
                self.mark_parents(&parents, |m| m.compaction.failed = true);
                return Err(e);
            }
        };
        let new = match path {
            Some(p) => {
                let block = match self.open_written(&p, meta.ulid) {
                    Ok(b) => Arc::new(b),
                    Err(e) => {
                        self.mark_parents(&parents, |m| m.compaction.failed = true);
                        return Err(e);
                    }
                };
                tracing::info!(ulid = %meta.ulid, level = meta.compaction.level, mint = meta.min_time, maxt = meta.max_time, "blocks compacted");
                Some(block)
            }
            None => {
                // Everything was deleted: mark the parents so a crash before their deletion still ends
                // with them gone.
                self.mark_parents(&parents, |m| m.compaction.deletable = true);
                None
            }
        };
        let new_ulid = new.as_ref().map(|b| b.meta().ulid);
        let removed: Vec<Ulid> = parents.iter().map(|b| b.meta().ulid).collect();
        self.swap_blocks(&removed, new);
        for &u in &removed {
            blockdir::delete_block(&inner.dir, u)?;
        }
        Ok((new_ulid, removed))
    }

    /// Opens a block just written. If that fails the block is deleted again: a block that cannot be
    /// opened must not stay behind, where it would stop the next start (or, being loaded, make its
    /// parents look obsolete).
    pub(crate) fn open_written(&self, path: &Path, ulid: Ulid) -> Result<Block> {
        Block::open(path).inspect_err(|e| {
            tracing::error!(block = %path.display(), error = %e, "a block just written cannot be opened; deleting it");
            if let Err(e) = blockdir::delete_block(&self.inner.dir, ulid) {
                tracing::error!(error = %e, "cannot delete the unreadable new block");
            }
        })
    }

    /// Rewrites the parents' `meta.json` with `f` applied and reloads them, logging failures (this runs
    /// on an error path already).
    fn mark_parents(&self, parents: &[Arc<Block>], f: impl Fn(&mut BlockMeta)) {
        for b in parents {
            let mut m = b.meta().clone();
            f(&mut m);
            let reopened = m
                .write_to_dir(b.dir())
                .and_then(|_| Block::open(b.dir()).map(Arc::new));
            match reopened {
                Ok(nb) => self.swap_blocks(&[b.meta().ulid], Some(nb)),
                Err(e) => {
                    tracing::error!(block = %b.dir().display(), error = %e, "cannot update block meta")
                }
            }
        }
    }

    /// Deletes the blocks past time or size retention; returns their ULIDs.
    fn apply_retention(&self) -> Result<Vec<Ulid>> {
        let inner = &self.inner;
        let current = inner.blocks.read().clone();
        let doomed = beyond_retention(&current, &inner.opts, head_bytes(&inner.dir));
        if doomed.is_empty() {
            return Ok(doomed);
        }
        self.swap_blocks(&doomed, None);
        for &u in &doomed {
            blockdir::delete_block(&inner.dir, u)?;
            tracing::info!(ulid = %u, "deleted block past retention");
        }
        Ok(doomed)
    }
}

/// Runs a read's part on each block and returns the results in block order. Decoding a block's series
/// entries (labels and chunk references) was most of a block-backed selection's time and is
/// independent per block, so when the blocks hold enough matching series, a second thread takes the
/// first blocks while this one takes the rest. A scoped thread rather than a shared pool: a long
/// selection must not queue other queries' selections behind it.
fn per_block<B: Send>(
    blocks: &[Arc<Block>],
    matchers: &[Matcher],
    block: impl Fn(&Block, Vec<u64>) -> Result<B> + Sync,
) -> Vec<Result<B>> {
    // Postings first, on this thread: cheap, and they say how much decoding there is.
    let refs: Vec<Result<Vec<u64>>> = blocks.iter().map(|b| b.refs(matchers)).collect();
    let sizes: Vec<usize> = refs
        .iter()
        .map(|r| r.as_ref().map_or(0, Vec::len))
        .collect();
    let total: usize = sizes.iter().sum();
    let run = |bs: &[Arc<Block>], rs: Vec<Result<Vec<u64>>>| -> Vec<Result<B>> {
        bs.iter()
            .zip(rs)
            .map(|(b, r)| r.and_then(|r| block(b, r)))
            .collect()
    };
    if total < PARALLEL_SELECT_MIN_SERIES || blocks.len() < 2 || !two_cores() {
        return run(blocks, refs);
    }
    // Split where the first part holds about half of the series.
    let mut acc = 0;
    let split = sizes
        .iter()
        .position(|&n| {
            acc += n;
            acc * 2 >= total
        })
        .map_or(1, |i| i + 1)
        .clamp(1, blocks.len() - 1);
    let mut refs = refs;
    let rest = refs.split_off(split);
    let (first, second) = blocks.split_at(split);
    // On rayon's pool: a half no other thread picked up is run by the thread that split the
    // work, so a core busy elsewhere costs at most the time of doing it all here (a thread
    // started per query was waited for, a scheduler slice on a busy machine).
    let (mut a, mut b) = rayon::join(|| run(first, refs), || run(second, rest));
    a.append(&mut b);
    a
}

/// Below this many matching block series, matching their index entries against the head's
/// selection (a few hundred nanoseconds each) takes less than handing half of it to another thread:
/// listing 256 series over two blocks took 0.18 ms on one thread and 0.33 ms split in two.
const PARALLEL_SELECT_MIN_SERIES: usize = 2000;

/// Whether this process may use a second core.
fn two_cores() -> bool {
    static N: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *N.get_or_init(|| std::thread::available_parallelism().map_or(1, |n| n.get())) >= 2
}

/// The union of two sorted, duplicate-free lists, sorted and duplicate-free. A linear merge: the
/// head's and every block's label sets arrive sorted, and comparing label sets (long shared prefixes
/// such as the metric name) was most of the series endpoint's time when they were concatenated and
/// sorted again.
fn merge_sorted_unique<T: Ord>(a: Vec<T>, b: Vec<T>) -> Vec<T> {
    if a.is_empty() {
        return b;
    }
    if b.is_empty() {
        return a;
    }
    let mut out = Vec::with_capacity(a.len().max(b.len()));
    let (mut a, mut b) = (a.into_iter().peekable(), b.into_iter().peekable());
    loop {
        let next = match (a.peek(), b.peek()) {
            (Some(x), Some(y)) => match x.cmp(y) {
                std::cmp::Ordering::Less => a.next(),
                std::cmp::Ordering::Greater => b.next(),
                std::cmp::Ordering::Equal => {
                    b.next();
                    a.next()
                }
            },
            (Some(_), None) => a.next(),
            (None, Some(_)) => b.next(),
            (None, None) => return out,
        };
        out.extend(next);
    }
}

#[cfg(test)]
mod merge_tests {
    use super::merge_sorted_unique;
    use proptest::prelude::*;

    proptest! {
        #[test]
        fn merging_sorted_unique_lists_equals_sorting_their_union(
            a in prop::collection::btree_set(0u16..500, 0..100),
            b in prop::collection::btree_set(0u16..500, 0..100),
        ) {
            let want: std::collections::BTreeSet<u16> = a.union(&b).copied().collect();
            let got = merge_sorted_unique(a.into_iter().collect(), b.into_iter().collect());
            prop_assert_eq!(got, want.into_iter().collect::<Vec<_>>());
        }
    }
}
