//! The in-memory head: every series that received samples recently, with its chunks, and the postings
//! index over their labels.
//!
//! Owns series identity (label set <-> [`SeriesRef`]), the striped locks that let several threads append at
//! once, the appendable time window, garbage collection of empty series, and deleting head chunk files
//! (`chunks_head/`, [`crate::chunks_head`]) that no series references after a truncation. It does not own durability:
//! the WAL is written by [`crate::Appender`] before samples reach the head, and replayed by
//! [`replay`]. Reading lives in [`read`], appending rules per series in [`series`].

pub(crate) mod read;
pub(crate) mod replay;
pub(crate) mod series;
pub(crate) mod symbols;

use std::collections::HashMap;
use std::hash::{BuildHasherDefault, Hasher};
use std::sync::Arc;
use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use ember_index::{Labels, MemPostings, SeriesRef};
use parking_lot::{Mutex, RwLock};

use self::series::{ChunkOpts, MemSeries, SeriesCell};
use self::symbols::Symbols;
use crate::chunks_head::HeadChunks;
use crate::tombstones::Tombstones;

/// Number of lock stripes for the series maps. A power of two well above the core count keeps two
/// appending threads from meeting on one lock; Prometheus uses 16 Ki stripes for millions of series, but
/// the maps themselves grow, so a few hundred stripes suffice.
const STRIPES: usize = 256;

/// Series refs and label hashes are already well mixed, so the maps use them as their own hash.
#[derive(Default)]
pub(crate) struct IdentityHasher(u64);

impl Hasher for IdentityHasher {
    fn finish(&self) -> u64 {
        self.0
    }
    fn write(&mut self, _: &[u8]) {
        unreachable!("only u64 keys are hashed")
    }
    fn write_u64(&mut self, n: u64) {
        // Spread sequential refs over hashbrown's control bits (it uses the top 7 bits).
        self.0 = n.wrapping_mul(0x9E37_79B9_7F4A_7C15);
    }
}

pub(crate) type IdMap<V> = HashMap<u64, V, BuildHasherDefault<IdentityHasher>>;

/// Label hash -> series, with a side table for the rare hash collision. The map holds the series itself
/// rather than its ref so a lookup by labels (once per series per remote-write request) probes one map.
#[derive(Default)]
struct HashStripe {
    first: IdMap<Arc<SeriesCell>>,
    conflicts: IdMap<Vec<Arc<SeriesCell>>>,
}

impl HashStripe {
    /// The first series under `hash` that `is_match` accepts.
    fn find(&self, hash: u64, is_match: impl Fn(&SeriesCell) -> bool) -> Option<Arc<SeriesCell>> {
        let first = self.first.get(&hash)?;
        if is_match(first) {
            return Some(first.clone());
        }
        self.conflicts
            .get(&hash)?
            .iter()
            .find(|c| is_match(c))
            .cloned()
    }
}

pub(crate) struct Head {
    pub(crate) symbols: Symbols,
    by_ref: Box<[RwLock<IdMap<Arc<SeriesCell>>>]>,
    by_hash: Box<[RwLock<HashStripe>]>,
    pub(crate) postings: RwLock<MemPostings>,
    next_ref: AtomicU64,
    num_series: AtomicU64,
    /// Oldest and newest sample time in the head; `i64::MAX`/`i64::MIN` while empty.
    min_time: AtomicI64,
    max_time: AtomicI64,
    /// Samples older than this are refused (raised by truncation so data is not re-added to a cut range).
    min_valid_time: AtomicI64,
    pub(crate) opts: ChunkOpts,
    /// Most series the head may hold; appends that would create more are refused.
    series_limit: u64,
    /// Serialises series creation so two threads creating the same label set get one ref.
    create: Mutex<()>,
    pub(crate) stats: HeadStats,
    /// Deleted ranges of head series, by head ref: hidden from reads and left out of blocks cut from
    /// the head (see [`crate::delete`]).
    pub(crate) tombstones: RwLock<Tombstones>,
    /// Where completed chunks go (`None`: they stay in memory).
    disk: Option<HeadChunks>,
}

/// Counters the head keeps for self-metrics and tests.
#[derive(Default)]
pub(crate) struct HeadStats {
    pub(crate) samples_appended: AtomicU64,
    pub(crate) out_of_order_samples: AtomicU64,
    pub(crate) series_created: AtomicU64,
    pub(crate) series_removed: AtomicU64,
    /// New series refused because the head was at its series limit.
    pub(crate) series_refused: AtomicU64,
}

impl Head {
    pub(crate) fn new(opts: ChunkOpts, series_limit: u64, disk: Option<HeadChunks>) -> Self {
        Head {
            disk,
            series_limit,
            symbols: Symbols::default(),
            by_ref: (0..STRIPES).map(|_| RwLock::default()).collect(),
            by_hash: (0..STRIPES).map(|_| RwLock::default()).collect(),
            postings: RwLock::new(MemPostings::new()),
            next_ref: AtomicU64::new(1),
            num_series: AtomicU64::new(0),
            min_time: AtomicI64::new(i64::MAX),
            max_time: AtomicI64::new(i64::MIN),
            min_valid_time: AtomicI64::new(i64::MIN),
            opts,
            create: Mutex::new(()),
            stats: HeadStats::default(),
            tombstones: RwLock::new(Tombstones::new()),
        }
    }

    /// The head chunk files, when completed chunks go to disk.
    #[inline]
    pub(crate) fn disk(&self) -> Option<&HeadChunks> {
        self.disk.as_ref()
    }

    /// Makes new series get refs of at least `r` (refs named by chunk files are never reused).
    pub(crate) fn reserve_refs_below(&self, r: u64) {
        self.next_ref.fetch_max(r, Ordering::Relaxed);
    }

    fn stripe(key: u64) -> usize {
        // Refs are sequential and hashes uniform: the low bits spread both.
        (key as usize) & (STRIPES - 1)
    }

    pub(crate) fn get(&self, r: SeriesRef) -> Option<Arc<SeriesCell>> {
        self.by_ref[Self::stripe(r)].read().get(&r).cloned()
    }

    /// The series with exactly these labels, if the head holds it.
    pub(crate) fn lookup(&self, labels: &Labels, hash: u64) -> Option<Arc<SeriesCell>> {
        self.by_hash[Self::stripe(hash)]
            .read()
            .find(hash, |s| self.symbols.equals(&s.labels, labels))
    }

    /// The series whose label set these raw pairs spell (in name order, unique names; empty values are
    /// skipped as [`Labels::new`] drops them), if the head holds it. No label set is built: this is the
    /// ingestion fast path for series that already exist.
    pub(crate) fn lookup_bytes(&self, pairs: &[(&[u8], &[u8])]) -> Option<Arc<SeriesCell>> {
        let hash = ember_index::stable_hash_of_pairs(pairs.iter().copied());
        self.by_hash[Self::stripe(hash)]
            .read()
            .find(hash, |s| self.symbols.equals_bytes(&s.labels, pairs))
    }

    /// The series with these labels, created if missing. `logged` says whether its series record is already
    /// durable (true during WAL replay). With `want_ref` (replay), the series gets that ref.
    pub(crate) fn get_or_create(
        &self,
        labels: &Labels,
        logged: bool,
        want_ref: Option<SeriesRef>,
    ) -> Result<(Arc<SeriesCell>, bool), crate::Error> {
        let hash = labels.stable_hash();
        if let Some(s) = self.lookup(labels, hash) {
            return Ok((s, false));
        }
        let _guard = self.create.lock();
        if let Some(s) = self.lookup(labels, hash) {
            return Ok((s, false));
        }
        // Replay (want_ref) never refuses: those series were acknowledged before the restart.
        if want_ref.is_none() && self.num_series() >= self.series_limit {
            self.stats.series_refused.fetch_add(1, Ordering::Relaxed);
            return Err(crate::Error::HeadSeriesLimit {
                limit: self.series_limit,
            });
        }
        let r = match want_ref {
            // A damaged or foreign WAL may define two label sets under one ref; the second gets a fresh
            // ref (replay maps the WAL ref to it) rather than replacing the first in the maps.
            Some(r) if !self.contains(r) && r != 0 && r != u64::MAX => {
                self.next_ref.fetch_max(r + 1, Ordering::Relaxed);
                r
            }
            _ => self.next_ref.fetch_add(1, Ordering::Relaxed),
        };
        let cell = Arc::new(SeriesCell {
            r,
            labels: self.symbols.intern_labels(labels),
            state: Mutex::new(MemSeries::new(logged)),
        });
        self.by_ref[Self::stripe(r)].write().insert(r, cell.clone());
        {
            let mut stripe = self.by_hash[Self::stripe(hash)].write();
            if let std::collections::hash_map::Entry::Vacant(e) = stripe.first.entry(hash) {
                e.insert(cell.clone());
            } else {
                stripe.conflicts.entry(hash).or_default().push(cell.clone());
            }
        }
        self.postings.write().add(r, labels);
        self.num_series.fetch_add(1, Ordering::Relaxed);
        self.stats.series_created.fetch_add(1, Ordering::Relaxed);
        Ok((cell, true))
    }

    pub(crate) fn num_series(&self) -> u64 {
        self.num_series.load(Ordering::Relaxed)
    }

    pub(crate) fn min_time(&self) -> i64 {
        self.min_time.load(Ordering::Acquire)
    }

    pub(crate) fn max_time(&self) -> i64 {
        self.max_time.load(Ordering::Acquire)
    }

    /// Widens the head's time range to cover `[mint, maxt]`.
    pub(crate) fn update_time_range(&self, mint: i64, maxt: i64) {
        self.min_time.fetch_min(mint, Ordering::AcqRel);
        self.max_time.fetch_max(maxt, Ordering::AcqRel);
    }

    /// The oldest timestamp an appender may write: half a chunk range behind the newest sample (so nothing
    /// lands in a range that is about to be compacted), and never below the last truncation point.
    pub(crate) fn min_valid_time(&self) -> i64 {
        let max = self.max_time();
        let window = if max == i64::MIN {
            i64::MIN
        } else {
            max.saturating_sub(self.opts.chunk_range / 2)
        };
        window.max(self.min_valid_time.load(Ordering::Acquire))
    }

    /// Refuses samples older than `t` from now on (blocks already hold that range). Replay skips them too.
    pub(crate) fn raise_min_valid(&self, t: i64) {
        self.min_valid_time.fetch_max(t, Ordering::AcqRel);
    }

    /// The truncation floor alone: samples before it belong to blocks, never to the head.
    pub(crate) fn min_valid_floor(&self) -> i64 {
        self.min_valid_time.load(Ordering::Acquire)
    }

    /// Drops all samples older than `mint` and every series left empty; returns the refs that remain, for
    /// the WAL checkpoint.
    pub(crate) fn truncate(&self, mint: i64) -> TruncateStats {
        self.min_valid_time.fetch_max(mint, Ordering::AcqRel);
        let mut stats = TruncateStats::default();
        let mut new_min = i64::MAX;
        // Chunks cut while the series are scanned go to this file or a later one: those stay.
        let write_floor = self.disk.as_ref().map_or(0, HeadChunks::write_floor);
        let mut min_file = write_floor;
        let mut removed: Vec<Arc<SeriesCell>> = Vec::new();
        for stripe in self.by_ref.iter() {
            let mut map = stripe.write();
            map.retain(|_, cell| {
                let mut s = cell.state.lock();
                stats.chunks_removed += s.truncate_before(mint);
                if let Some(f) = s.first_file() {
                    min_file = min_file.min(f);
                }
                if s.is_empty() {
                    removed.push(cell.clone());
                    false
                } else {
                    if let Some(t) = s.min_time() {
                        new_min = new_min.min(t);
                    }
                    true
                }
            });
        }
        if !removed.is_empty() {
            let mut postings = self.postings.write();
            for cell in &removed {
                let labels = self.symbols.resolve(&cell.labels);
                postings.delete(cell.r, &labels);
                let hash = labels.stable_hash();
                let mut stripe = self.by_hash[Self::stripe(hash)].write();
                if stripe.first.get(&hash).is_some_and(|c| c.r == cell.r) {
                    match stripe.conflicts.get_mut(&hash).and_then(|v| v.pop()) {
                        Some(other) => {
                            stripe.first.insert(hash, other);
                        }
                        None => {
                            stripe.first.remove(&hash);
                        }
                    }
                } else if let Some(v) = stripe.conflicts.get_mut(&hash) {
                    v.retain(|c| c.r != cell.r);
                }
                if stripe.conflicts.get(&hash).is_some_and(|v| v.is_empty()) {
                    stripe.conflicts.remove(&hash);
                }
            }
        }
        {
            // Deletions that end before the cut, or of series that are gone, can hide nothing any more.
            let mut stones = self.tombstones.write();
            stones.truncate_before(mint);
            for cell in &removed {
                stones.remove_series(cell.r);
            }
        }
        stats.series_removed = removed.len();
        self.num_series
            .fetch_sub(removed.len() as u64, Ordering::Relaxed);
        self.stats
            .series_removed
            .fetch_add(removed.len() as u64, Ordering::Relaxed);
        if let Some(disk) = &self.disk {
            match disk.truncate(min_file) {
                Ok(n) => stats.chunk_files_removed = n,
                // The files stay; the next truncation tries again. Nothing references them.
                Err(e) => tracing::error!(error = %e, "deleting head chunk files failed"),
            }
        }
        if new_min == i64::MAX {
            // Empty head: keep max_time so the appendable window still refuses data behind the cut.
            self.min_time.store(i64::MAX, Ordering::Release);
        } else {
            self.min_time.store(new_min.max(mint), Ordering::Release);
        }
        stats
    }

    /// Drops the attached chunks of every series replay found no WAL sample for; returns how many.
    pub(crate) fn drop_unverified_mapped(&self) -> u64 {
        let mut n = 0;
        for stripe in self.by_ref.iter() {
            for cell in stripe.read().values() {
                let mut s = cell.state.lock();
                if s.mapped_unverified {
                    n += s.verify_mapped(i64::MAX) as u64;
                }
            }
        }
        n
    }

    /// Whether the head holds a series with this ref (WAL checkpointing keeps only those).
    pub(crate) fn contains(&self, r: SeriesRef) -> bool {
        self.by_ref[Self::stripe(r)].read().contains_key(&r)
    }

    /// Approximate heap bytes of the head by component, for memory statistics.
    pub(crate) fn memory(&self) -> HeadMemory {
        let mut m = HeadMemory {
            symbols: self.symbols.memory_bytes(),
            ..Default::default()
        };
        m.postings = self.postings.read().memory_bytes();
        for stripe in self.by_ref.iter() {
            let map = stripe.read();
            m.series_maps += map.capacity() * (std::mem::size_of::<(u64, Arc<SeriesCell>)>() + 1);
            for cell in map.values() {
                m.series += std::mem::size_of::<SeriesCell>() + 16 + cell.labels.len();
                m.chunks += cell.state.lock().chunk_bytes();
            }
        }
        for stripe in self.by_hash.iter() {
            let s = stripe.read();
            m.series_maps +=
                s.first.capacity() * (std::mem::size_of::<(u64, Arc<SeriesCell>)>() + 1);
        }
        m
    }
}

#[derive(Debug, Default)]
pub(crate) struct TruncateStats {
    pub(crate) chunks_removed: usize,
    pub(crate) series_removed: usize,
    pub(crate) chunk_files_removed: usize,
}

/// Heap bytes by component, from [`Head::memory`].
#[derive(Debug, Default, Clone, Copy)]
pub struct HeadMemory {
    pub symbols: usize,
    pub postings: usize,
    pub series_maps: usize,
    pub series: usize,
    pub chunks: usize,
}

impl HeadMemory {
    pub fn total(&self) -> usize {
        self.symbols + self.postings + self.series_maps + self.series + self.chunks
    }
}
