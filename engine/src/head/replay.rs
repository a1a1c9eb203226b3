//! Rebuilding the head on open: chunks found in the head chunk files (`chunks_head/`) are attached to
//! their series as each series record is read, then the samples of the last checkpoint and every later
//! segment are appended, skipping those a mapped chunk already holds.
//!
//! Owns the replay policy for damaged logs: a record cut off at the end of the newest segment (a torn
//! write) is truncated away automatically, because nothing after it can have been acknowledged; any other
//! corruption stops the open with an error naming segment and offset unless the caller opted into repair,
//! which keeps every record before the damage. It does not own the WAL byte format (`ember_wal`).

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;

use ember_index::SeriesRef;
use ember_wal::record::{self, RecordType, RefSample, RefSeries, Tombstone};
use ember_wal::{Reader, Wal};

use super::series::SeriesCell;
use super::{Head, IdMap};
use crate::chunks_head::{HeadChunksLoad, LoadedChunk};
use crate::error::{Error, Result};

/// What replay found, for logs, metrics and tests.
#[derive(Debug, Default, Clone)]
pub struct ReplayStats {
    pub checkpoint: Option<u32>,
    pub segments: usize,
    pub series_records: usize,
    pub samples: u64,
    /// Samples refused as out-of-order or duplicate-with-different-value (as they were at append time).
    pub rejected_samples: u64,
    /// Samples whose series record was never seen (e.g. written by a racing appender before a crash).
    pub unknown_ref_samples: u64,
    /// Deleted intervals of known series restored from tombstones records.
    pub tombstones: usize,
    /// Record types Ember does not read yet (exemplars, histograms, metadata), skipped.
    pub skipped_records: usize,
    /// Samples older than the newest block's end, skipped: a block already holds them (the WAL was not
    /// yet checkpointed when the process stopped after writing the block).
    pub samples_in_blocks: u64,
    /// Where a damaged log was cut, if it was: (segment, offset).
    pub repaired_at: Option<(u32, u64)>,
    /// What loading the head chunk files found (and repaired).
    pub head_chunks: HeadChunksLoad,
    /// Chunks from the head chunk files attached to series.
    pub mmapped_chunks: u64,
    /// Chunks found in the files but dropped because they do not start where their series' WAL does
    /// (a truncation before the restart cut through one, or older ones are missing): the WAL rebuilt
    /// those series.
    pub mmapped_chunks_truncated: u64,
    /// WAL samples skipped because an attached chunk already holds them.
    pub samples_in_mmapped_chunks: u64,
}

/// The chunks found in the head chunk files, grouped by series ref (file order kept within a series).
#[derive(Default)]
pub(crate) struct MappedIndex {
    chunks: Vec<LoadedChunk>,
    by_series: IdMap<(u32, u32)>,
}

impl MappedIndex {
    pub(crate) fn new(mut chunks: Vec<LoadedChunk>) -> Self {
        // Stable: a series' chunks stay in file order, which is time order.
        chunks.sort_by_key(|c| c.series);
        let mut by_series = IdMap::default();
        by_series.reserve(chunks.len() / 3);
        let mut i = 0;
        while i < chunks.len() {
            let r = chunks[i].series;
            let mut j = i + 1;
            while j < chunks.len() && chunks[j].series == r {
                j += 1;
            }
            by_series.insert(r, (i as u32, (j - i) as u32));
            i = j;
        }
        MappedIndex { chunks, by_series }
    }

    fn get(&self, series: SeriesRef) -> &[LoadedChunk] {
        match self.by_series.get(&series) {
            Some(&(start, len)) => &self.chunks[start as usize..(start + len) as usize],
            None => &[],
        }
    }
}

struct Replayer<'h> {
    head: &'h Head,
    mapped: &'h MappedIndex,
    /// Ref in the WAL -> series in the head. Usually the same ref; differs when the WAL defined one label
    /// set twice under two refs.
    refs: RefTable,
    series: Vec<RefSeries>,
    samples: Vec<RefSample>,
    stones: Vec<Tombstone>,
    stats: ReplayStats,
    mint: i64,
    maxt: i64,
    /// Series with attached chunks not yet checked against their first WAL sample.
    unverified: u64,
}

/// Replays `wal_dir` into `head`, attaching the chunks of `mapped` to their series. `repair` allows
/// cutting the log at a corruption that is not a torn tail.
pub(crate) fn replay(
    head: &Head,
    wal_dir: &Path,
    repair: bool,
    mapped: &MappedIndex,
) -> Result<ReplayStats> {
    let mut r = Replayer {
        head,
        mapped,
        refs: RefTable::default(),
        series: Vec::new(),
        samples: Vec::new(),
        stones: Vec::new(),
        stats: ReplayStats::default(),
        mint: i64::MAX,
        maxt: i64::MIN,
        unverified: 0,
    };
    if !wal_dir.exists() {
        return Ok(r.stats);
    }
    let checkpoint = ember_wal::checkpoint::last_checkpoint(wal_dir)?;
    let mut first_segment = 0;
    if let Some((path, idx)) = &checkpoint {
        // A checkpoint is written whole and renamed into place, so any damage in it is real corruption.
        let mut reader = Reader::open_dir(path)?;
        while let Some(rec) = reader.next_record()? {
            r.apply(rec, path)?;
        }
        r.stats.checkpoint = Some(*idx);
        first_segment = idx + 1;
    }
    if let Some((first, last)) = Wal::segment_range(wal_dir)? {
        let first = first.max(first_segment);
        if first <= last {
            r.stats.segments = (last - first + 1) as usize;
            let mut reader = Reader::open_range(wal_dir, first, last)?;
            loop {
                match reader.next_record() {
                    Ok(Some(rec)) => r.apply(rec, wal_dir)?,
                    Ok(None) => break,
                    Err(e @ ember_wal::Error::Corruption { .. }) => {
                        let ember_wal::Error::Corruption {
                            segment, offset, ..
                        } = &e
                        else {
                            unreachable!()
                        };
                        let (segment, offset) = (*segment, *offset);
                        let torn_tail = ember_wal::is_torn_tail(wal_dir, &e)?;
                        if !(torn_tail || repair) {
                            return Err(Error::Wal(e));
                        }
                        tracing::warn!(
                            error = %e,
                            torn_tail,
                            "WAL damaged; keeping every record before the damage and cutting the rest"
                        );
                        drop(reader);
                        ember_wal::repair(wal_dir, segment, offset)?;
                        r.stats.repaired_at = Some((segment, offset));
                        break;
                    }
                    Err(e) => return Err(e.into()),
                }
            }
        }
    }
    if r.unverified > 0 {
        // Series without a single WAL sample: the head was truncated past all their chunks.
        let dropped = head.drop_unverified_mapped();
        r.stats.mmapped_chunks -= dropped;
        r.stats.mmapped_chunks_truncated += dropped;
    }
    if r.mint <= r.maxt {
        head.update_time_range(r.mint, r.maxt);
    }
    head.stats
        .samples_appended
        .fetch_add(r.stats.samples, Ordering::Relaxed);
    Ok(r.stats)
}

impl Replayer<'_> {
    fn apply(&mut self, rec: &[u8], path: &Path) -> Result<()> {
        let corrupt = |e: ember_wal::Error| Error::Corruption {
            path: path.to_path_buf(),
            reason: e.to_string(),
        };
        match record::record_type(rec) {
            RecordType::Series => {
                self.series.clear();
                record::decode_series(rec, &mut self.series).map_err(corrupt)?;
                let floor = self.head.min_valid_floor();
                for s in self.series.drain(..) {
                    let (cell, _) = self.head.get_or_create(&s.labels, true, Some(s.r))?;
                    let chunks = self.mapped.get(s.r);
                    if !chunks.is_empty() {
                        // Chunks wholly behind the floor belong to blocks already.
                        let live = chunks.partition_point(|c| c.max_t < floor);
                        let chunks = &chunks[live..];
                        let mut st = cell.state.lock();
                        let was_unverified = st.mapped_unverified;
                        let n = st.attach_mapped(chunks);
                        self.stats.mmapped_chunks += n as u64;
                        if n > 0 && !was_unverified {
                            self.unverified += 1;
                        }
                    }
                    self.refs.insert(s.r, cell);
                    self.stats.series_records += 1;
                }
            }
            RecordType::Samples => {
                self.samples.clear();
                record::decode_samples(rec, &mut self.samples).map_err(corrupt)?;
                self.apply_samples();
            }
            RecordType::Tombstones => {
                self.stones.clear();
                record::decode_tombstones(rec, &mut self.stones).map_err(corrupt)?;
                // A deletion hides whatever the series holds in its range, whenever the samples were
                // logged, so the order of tombstones and samples in the log does not matter.
                let mut head_stones = self.head.tombstones.write();
                for st in &self.stones {
                    let Some(cell) = self.refs.get(st.r) else {
                        continue;
                    };
                    for &(mint, maxt) in &st.intervals {
                        head_stones.add(cell.r, crate::tombstones::Interval::new(mint, maxt));
                        self.stats.tombstones += 1;
                    }
                }
            }
            RecordType::Unknown(_) => self.stats.skipped_records += 1,
        }
        Ok(())
    }

    fn apply_samples(&mut self) {
        let opts = self.head.opts;
        let disk = self.head.disk();
        let floor = self.head.min_valid_floor();
        let mut i = 0;
        let samples = &self.samples;
        while i < samples.len() {
            // A record written in scrape order names a different series in every sample, so each one
            // starts with a cache miss on that series' state; asking for it PREFETCH samples ahead
            // overlaps the misses (measured with `replay_1m`, see docs/benchmarks.md).
            if let Some(ahead) = samples.get(i + PREFETCH)
                && let Some(cell) = self.refs.get(ahead.r)
            {
                prefetch(&cell.state);
            }
            // Records hold runs of samples of one series often enough that locking once per run pays.
            let r: SeriesRef = samples[i].r;
            let mut j = i + 1;
            while j < samples.len() && samples[j].r == r {
                j += 1;
            }
            match self.refs.get(r) {
                None => self.stats.unknown_ref_samples += (j - i) as u64,
                Some(cell) => {
                    let mut s = cell.state.lock();
                    let mut covered = s.mapped_max_t().unwrap_or(i64::MIN);
                    for smp in &samples[i..j] {
                        if smp.t < floor {
                            self.stats.samples_in_blocks += 1;
                            continue;
                        }
                        if s.mapped_unverified {
                            let dropped = s.verify_mapped(smp.t) as u64;
                            self.unverified -= 1;
                            self.stats.mmapped_chunks -= dropped;
                            self.stats.mmapped_chunks_truncated += dropped;
                            if let (Some(first), Some(last)) = (s.mapped.first(), s.mapped.last()) {
                                self.mint = self.mint.min(first.min_t);
                                self.maxt = self.maxt.max(last.max_t);
                            }
                            covered = s.mapped_max_t().unwrap_or(i64::MIN);
                        }
                        if smp.t <= covered {
                            self.stats.samples_in_mmapped_chunks += 1;
                            continue;
                        }
                        match s.append(cell.r, smp.t, smp.v, opts, disk) {
                            Ok(_) => {
                                self.stats.samples += 1;
                                self.mint = self.mint.min(smp.t);
                                self.maxt = self.maxt.max(smp.t);
                            }
                            Err(_) => self.stats.rejected_samples += 1,
                        }
                    }
                }
            }
            i = j;
        }
    }
}

/// How many samples ahead replay asks for a series' state to be loaded into cache.
const PREFETCH: usize = 8;

/// Hints the CPU to load the cache lines at `x` (a no-op where no hint is available).
#[inline(always)]
fn prefetch<T>(x: &T) {
    #[cfg(target_arch = "x86_64")]
    {
        use std::arch::x86_64::{_MM_HINT_T0, _mm_prefetch};
        let p = (x as *const T).cast::<i8>();
        // SAFETY: prefetching is only a hint; it never faults and reads nothing the program sees. The
        // second line is still inside or just past `x`, which is fine for a hint.
        unsafe {
            _mm_prefetch::<_MM_HINT_T0>(p);
            _mm_prefetch::<_MM_HINT_T0>(p.wrapping_add(64));
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = x;
}

/// WAL ref -> head series. Refs are handed out densely from 1, so a vector indexed by ref is the common
/// case: one predictable load per sample instead of a hash probe into a map of a million entries. Refs
/// too far beyond the series seen so far (a WAL written by another tool, or damaged) go to a map, so a
/// single huge ref cannot make replay allocate a huge vector.
#[derive(Default)]
struct RefTable {
    dense: Vec<Option<Arc<SeriesCell>>>,
    sparse: IdMap<Arc<SeriesCell>>,
    inserted: u64,
}

impl RefTable {
    /// Maps `r` to `cell`; a later definition of the same ref replaces the earlier one.
    fn insert(&mut self, r: SeriesRef, cell: Arc<SeriesCell>) {
        self.inserted += 1;
        if r < Self::dense_limit(self.inserted) {
            let i = r as usize;
            if i >= self.dense.len() {
                self.dense.resize(i + 1, None);
            }
            self.dense[i] = Some(cell);
            self.sparse.remove(&r);
        } else {
            self.sparse.insert(r, cell);
        }
    }

    /// Refs below this go to the vector: at most a few slots per series defined, plus some slack.
    fn dense_limit(inserted: u64) -> u64 {
        inserted.saturating_mul(2).saturating_add(1 << 16)
    }

    #[inline]
    fn get(&self, r: SeriesRef) -> Option<&Arc<SeriesCell>> {
        if let Some(Some(cell)) = self.dense.get(r as usize) {
            return Some(cell);
        }
        // A ref can sit in the map from before the vector grew past it.
        if self.sparse.is_empty() {
            None
        } else {
            self.sparse.get(&r)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::head::series::MemSeries;
    use parking_lot::Mutex;

    fn cell(r: SeriesRef) -> Arc<SeriesCell> {
        Arc::new(SeriesCell {
            r,
            labels: Box::new([]),
            state: Mutex::new(MemSeries::new(true)),
        })
    }

    #[test]
    fn ref_table_finds_dense_and_sparse_refs_and_nothing_else() {
        let mut t = RefTable::default();
        for r in 1..=1000 {
            t.insert(r, cell(r * 10));
        }
        t.insert(u64::MAX - 1, cell(7));
        for r in 1..=1000 {
            assert_eq!(t.get(r).map(|c| c.r), Some(r * 10));
        }
        assert_eq!(t.get(u64::MAX - 1).map(|c| c.r), Some(7));
        assert!(t.get(0).is_none());
        assert!(t.get(1001).is_none());
        assert!(t.get(u64::MAX).is_none());
    }

    #[test]
    fn ref_table_keeps_a_huge_ref_out_of_the_vector() {
        let mut t = RefTable::default();
        t.insert(1 << 40, cell(1));
        assert!(t.dense.len() <= RefTable::dense_limit(1) as usize);
        assert_eq!(t.get(1 << 40).map(|c| c.r), Some(1));
    }

    #[test]
    fn ref_table_later_definition_of_a_ref_wins() {
        let mut t = RefTable::default();
        // First seen while far beyond the dense limit (map), later redefined once the limit has grown.
        let r = RefTable::dense_limit(1) + 5;
        t.insert(r, cell(1));
        for x in 0..(r / 2 + 1) {
            t.insert(x, cell(0));
        }
        t.insert(r, cell(2));
        assert_eq!(t.get(r).map(|c| c.r), Some(2));
        t.insert(3, cell(9));
        assert_eq!(t.get(3).map(|c| c.r), Some(9));
    }
}
