//! The database handle: opening a data directory, handing out appenders and queriers, truncating the head
//! with a WAL checkpoint, and closing.
//!
//! Owns the data directory's layout (`wal/`, the `lock` file) and the order of start-up (lock, replay, then
//! open the WAL for writing). It does not own blocks or compaction (a later layer).

use std::fs::File;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use ember_index::{Labels, Matcher};
use ember_wal::{Compression, SyncPolicy, Wal, WalOptions};

use crate::appender::Appender;
use crate::error::{Error, Result};
use crate::head::replay::{self, ReplayStats};
use crate::head::series::ChunkOpts;
use crate::head::{Head, HeadMemory};
use crate::read::Series;

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
        }
    }
}

pub(crate) struct DbInner {
    pub(crate) dir: PathBuf,
    pub(crate) head: Head,
    pub(crate) wal: Wal,
    pub(crate) opts: Options,
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
    inner: Arc<DbInner>,
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
        lock.try_lock().map_err(|e| Error::Io {
            path: lock_path.clone(),
            source: match e {
                std::fs::TryLockError::Error(e) => e,
                std::fs::TryLockError::WouldBlock => std::io::Error::new(
                    std::io::ErrorKind::WouldBlock,
                    "the data directory is locked by another process",
                ),
            },
        })?;
        crate::block::dir::remove_tmp_dirs(&dir)?;
        let head = Head::new(
            ChunkOpts {
                chunk_range: opts.block_range_ms.max(1),
                samples_per_chunk: opts.samples_per_chunk.max(4),
            },
            opts.head_series_limit.unwrap_or(u64::MAX),
        );
        let wal_dir = dir.join("wal");
        let started = std::time::Instant::now();
        let stats = replay::replay(&head, &wal_dir, opts.repair_wal)?;
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
                opts,
                closed: AtomicBool::new(false),
                _lock: lock,
            }),
            replay: Arc::new(stats),
        })
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
        DbStats {
            num_series: h.num_series(),
            time_range: (mint <= maxt).then_some((mint, maxt)),
            samples_appended: h.stats.samples_appended.load(Ordering::Relaxed),
            out_of_order_samples: h.stats.out_of_order_samples.load(Ordering::Relaxed),
            series_created: h.stats.series_created.load(Ordering::Relaxed),
            series_removed: h.stats.series_removed.load(Ordering::Relaxed),
            series_refused: h.stats.series_refused.load(Ordering::Relaxed),
            memory: h.memory(),
        }
    }

    /// Drops every sample older than `mint` from the head, removes series left empty, and checkpoints the
    /// WAL so that replay no longer reads what was dropped: the log is rolled to a new segment, every
    /// complete segment is folded into `checkpoint.N` (keeping only live series and samples at or after
    /// `mint`), and the folded segments are deleted. Used by retention now and by block cutting later.
    pub fn truncate_head(&self, mint: i64) -> Result<TruncateStats> {
        let inner = &self.inner;
        let h = inner.head.truncate(mint);
        let wal_dir = inner.dir.join("wal");
        let current = inner.wal.next_segment()?;
        let mut out = TruncateStats {
            series_removed: h.series_removed,
            chunks_removed: h.chunks_removed,
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
    /// Index of the last segment folded into the new checkpoint, if one was written.
    pub checkpoint: Option<u32>,
    pub checkpoint_series: usize,
    pub checkpoint_samples: usize,
}

/// Reads series, samples and label metadata over a fixed time range.
pub struct Querier {
    db: Arc<DbInner>,
    mint: i64,
    maxt: i64,
}

impl Querier {
    /// Series matching every matcher that have samples in range, sorted by label set. With no matchers,
    /// every series.
    pub fn select(&self, matchers: &[Matcher]) -> Vec<Series> {
        self.db.head.select(matchers, self.mint, self.maxt)
    }

    /// The label sets of the series [`Querier::select`] returns, in the same order, without their
    /// samples.
    pub fn select_labels(&self, matchers: &[Matcher]) -> Vec<Labels> {
        self.db.head.select_labels(matchers, self.mint, self.maxt)
    }

    /// Label names (sorted) of the series matching `matchers` (all series when empty).
    pub fn label_names(&self, matchers: &[Matcher]) -> Vec<String> {
        let p = self.db.head.postings.read();
        if matchers.is_empty() {
            p.label_names()
        } else {
            p.label_names_for(matchers)
        }
    }

    /// Values (sorted) of label `name` among the series matching `matchers` (all series when empty).
    pub fn label_values(&self, name: &str, matchers: &[Matcher]) -> Vec<String> {
        let p = self.db.head.postings.read();
        if matchers.is_empty() {
            p.label_values(name)
        } else {
            p.label_values_for(name, matchers)
        }
    }

    pub fn mint(&self) -> i64 {
        self.mint
    }

    pub fn maxt(&self) -> i64 {
        self.maxt
    }
}
