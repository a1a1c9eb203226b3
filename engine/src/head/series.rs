//! One series of the head: its interned labels, its closed chunks and its open chunk.
//!
//! Owns chunk cutting (when a new XOR chunk starts), handing each completed chunk to the head chunk
//! files (keeping only a [`MappedChunk`] reference; the chunk stays in memory only if that write
//! fails or the files are off), and the per-series append checks (out-of-order, duplicate timestamps).
//! It does not own the WAL, the index, the chunk file format ([`crate::chunks_head`]) or the decision
//! whether a timestamp is inside the head's appendable window; those belong to [`super::Head`] and the
//! appender.

use std::sync::Arc;

use parking_lot::Mutex;

use crate::chunkenc::XorAppender;
#[cfg(test)]
use crate::chunkenc::XorIterator;
use crate::chunks_head::{HeadChunkRef, HeadChunks, LoadedChunk};
use crate::error::{Error, Result};
use crate::read::{ChunkData, SeriesChunk};
use ember_index::SeriesRef;

/// Largest chunk size after which a new chunk is cut before the next append, as Prometheus does
/// (`MaxBytesPerXORChunk` 1024 minus the 19 bytes a worst-case sample can add).
pub(crate) const MAX_BYTES_BEFORE_APPEND: usize = 1024 - 19;

/// Settings that shape chunk cutting; copied from the database options.
#[derive(Clone, Copy, Debug)]
pub(crate) struct ChunkOpts {
    /// Width of the head's chunk range (the block range): no chunk crosses a multiple of it.
    pub(crate) chunk_range: i64,
    /// Target number of samples per chunk.
    pub(crate) samples_per_chunk: u16,
}

/// A series as the head shares it between the index, appenders and queriers. The labels never change after
/// creation, so they sit outside the lock and lookups by label set need no series lock.
pub(crate) struct SeriesCell {
    pub(crate) r: SeriesRef,
    /// Interned `[name, value, name, value, …]` ids as varints, sorted by name.
    pub(crate) labels: Box<[u8]>,
    pub(crate) state: Mutex<MemSeries>,
}

/// An immutable, full chunk. The bytes are shared with queriers so a query never copies closed chunks.
#[derive(Clone)]
pub(crate) struct ClosedChunk {
    pub(crate) min_t: i64,
    pub(crate) max_t: i64,
    pub(crate) data: Arc<[u8]>,
}

/// A completed chunk that lives in a head chunk file: where, and its time span (both ends inclusive).
#[derive(Clone, Copy, Debug)]
pub(crate) struct MappedChunk {
    pub(crate) r: HeadChunkRef,
    pub(crate) min_t: i64,
    pub(crate) max_t: i64,
}

/// The chunk being appended to; its newest sample (time and value) lives in the encoder state.
pub(crate) struct OpenChunk {
    pub(crate) app: XorAppender,
    pub(crate) min_t: i64,
}

impl OpenChunk {
    pub(crate) fn max_t(&self) -> i64 {
        self.app.last_t()
    }
}

/// The mutable part of a series.
pub(crate) struct MemSeries {
    /// Completed chunks in the head chunk files, oldest first.
    pub(crate) mapped: Vec<MappedChunk>,
    /// Completed chunks kept in memory (the chunk files are off, or writing one failed), oldest first.
    /// Together with `mapped` they form the series' closed chunks; the two lists never overlap in time.
    pub(crate) closed: Vec<ClosedChunk>,
    /// Present from the first sample on; only truncation removes it (and then the series is empty).
    pub(crate) open: Option<OpenChunk>,
    /// Timestamp at which the open chunk is cut, as predicted by Prometheus' rule.
    next_at: i64,
    /// The newest sample accepted by an appender, committed or not (`i64::MIN` when none), so that samples
    /// later in the same batch are checked against it. The newest committed sample is the open chunk's.
    pending_t: i64,
    pending_v: f64,
    /// Whether a series record for this series is in the WAL.
    pub(crate) logged: bool,
    /// Set while replay has attached chunks from the files but not yet seen a WAL sample of the series
    /// (see [`MemSeries::verify_mapped`]).
    pub(crate) mapped_unverified: bool,
}

/// What a commit-time append did.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Appended {
    Sample,
    /// Exactly the newest sample again: accepted, not stored.
    Duplicate,
}

impl MemSeries {
    pub(crate) fn new(logged: bool) -> Self {
        MemSeries {
            mapped: Vec::new(),
            closed: Vec::new(),
            open: None,
            next_at: i64::MIN,
            pending_t: i64::MIN,
            pending_v: 0.0,
            logged,
            mapped_unverified: false,
        }
    }

    /// The newest committed sample.
    pub(crate) fn last(&self) -> Option<(i64, f64)> {
        self.open.as_ref().map(|c| (c.app.last_t(), c.app.last_v()))
    }

    /// Checks a sample against the newest committed or pending one, the rule Prometheus applies in
    /// `memSeries.appendable`: newer is fine, the same timestamp with bit-identical value is a harmless
    /// duplicate, anything else is refused.
    pub(crate) fn check(&self, t: i64, v: f64) -> Result<Appended> {
        let newest = if self.pending_t != i64::MIN {
            Some((self.pending_t, self.pending_v))
        } else {
            self.last()
        };
        match newest {
            None => Ok(Appended::Sample),
            Some((lt, _)) if t > lt => Ok(Appended::Sample),
            Some((lt, lv)) if t == lt => {
                if lv.to_bits() == v.to_bits() {
                    Ok(Appended::Duplicate)
                } else {
                    Err(Error::DuplicateSampleForTimestamp { t })
                }
            }
            Some((lt, _)) => Err(Error::OutOfOrderSample { t, last: lt }),
        }
    }

    /// Records a sample accepted by an appender so later samples of the same batch are checked against it.
    pub(crate) fn set_pending(&mut self, t: i64, v: f64) {
        self.pending_t = t;
        self.pending_v = v;
    }

    /// Forgets pending samples (appender rollback).
    pub(crate) fn clear_pending(&mut self) {
        (self.pending_t, self.pending_v) = self.last().unwrap_or((i64::MIN, 0.0));
    }

    /// Appends a committed sample, cutting a new chunk where Prometheus would. Returns an error (and stores
    /// nothing) if the sample is not newer than the newest committed one; this happens only when two
    /// appenders raced on the same series, or on WAL replay of out-of-order data.
    /// `series` is the ref the chunk files record for this series; `disk` receives completed chunks.
    pub(crate) fn append(
        &mut self,
        series: SeriesRef,
        t: i64,
        v: f64,
        o: ChunkOpts,
        disk: Option<&HeadChunks>,
    ) -> Result<Appended> {
        if let Some((last_t, last_v)) = self.last() {
            if t == last_t && v.to_bits() == last_v.to_bits() {
                return Ok(Appended::Duplicate);
            }
            if t == last_t {
                return Err(Error::DuplicateSampleForTimestamp { t });
            }
            if t < last_t {
                return Err(Error::OutOfOrderSample { t, last: last_t });
            }
        }
        let cut = match &self.open {
            None => true,
            Some(c) => {
                let n = c.app.num_samples();
                if c.app.size_bytes() > MAX_BYTES_BEFORE_APPEND {
                    true
                } else {
                    // At a quarter of the target, predict an end time that spreads the rest of the chunk
                    // range evenly over chunks of about `samples_per_chunk` samples.
                    if n == o.samples_per_chunk / 4 {
                        self.next_at =
                            compute_chunk_end_time(c.min_t, c.max_t(), self.next_at, 4.0);
                    }
                    t >= self.next_at || n >= o.samples_per_chunk.saturating_mul(2)
                }
            }
        };
        if cut {
            self.cut_chunk(series, t, o.chunk_range, disk);
        }
        let c = self
            .open
            .as_mut()
            .expect("an open chunk exists after cutting");
        c.app.append(t, v);
        if self.pending_t < t {
            self.pending_t = t;
            self.pending_v = v;
        }
        Ok(Appended::Sample)
    }

    fn cut_chunk(
        &mut self,
        series: SeriesRef,
        t: i64,
        chunk_range: i64,
        disk: Option<&HeadChunks>,
    ) {
        if let Some(old) = self.open.take()
            && old.app.num_samples() > 0
        {
            let max_t = old.max_t();
            let bytes = old.app.into_bytes();
            let written = disk.map(|d| d.write(series, old.min_t, max_t, &bytes));
            match written {
                Some(Ok(r)) => {
                    // A series gains a closed chunk every ~30 minutes; growing the list one slot at a
                    // time keeps the 24-byte entries from being allocated four at a time.
                    self.mapped.reserve_exact(1);
                    self.mapped.push(MappedChunk {
                        r,
                        min_t: old.min_t,
                        max_t,
                    });
                }
                other => {
                    if let Some(Err(e)) = other {
                        // The chunk stays in memory: nothing is lost, only the RAM saving.
                        tracing::error!(error = %e, series, "writing a head chunk failed; keeping it in memory");
                        if let Some(d) = disk {
                            d.stats
                                .write_errors
                                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        }
                    }
                    self.closed.reserve_exact(1);
                    self.closed.push(ClosedChunk {
                        min_t: old.min_t,
                        max_t,
                        // Exactly sized, shared with queriers without copying.
                        data: Arc::from(bytes),
                    });
                }
            }
        }
        self.open = Some(OpenChunk {
            app: XorAppender::new(),
            min_t: t,
        });
        self.next_at = range_for_timestamp(t, chunk_range);
    }

    /// Attaches chunks found in the head chunk files at open (oldest first) to this series; returns how
    /// many were attached. A chunk that does not start after everything the series already holds is
    /// skipped (a label set defined twice in the WAL): the WAL replays those samples instead.
    pub(crate) fn attach_mapped(&mut self, chunks: &[LoadedChunk]) -> usize {
        let mut n = 0;
        self.mapped.reserve_exact(chunks.len());
        for c in chunks {
            if self.open.is_some() || self.mapped_max_t().is_some_and(|m| c.min_t <= m) {
                continue;
            }
            self.mapped.push(MappedChunk {
                r: c.r,
                min_t: c.min_t,
                max_t: c.max_t,
            });
            n += 1;
        }
        self.mapped.shrink_to_fit();
        self.mapped_unverified |= n > 0;
        n
    }

    /// Checks the attached chunks against `first_wal_t`, the series' oldest WAL sample not behind the
    /// newest block, and drops them all unless the first one starts exactly there; returns how many
    /// went. The WAL holds every sample of the head from the last truncation on, so the chunk files and
    /// the WAL agree on where the series starts unless a truncation cut through a chunk (its file was
    /// still in use and could not be deleted, and the chunk holds samples the truncation removed) or
    /// older chunks are missing from the files. In both cases the WAL alone rebuilds the series, as a
    /// restart without chunk files would; skipping WAL samples up to a later chunk would lose the gap.
    pub(crate) fn verify_mapped(&mut self, first_wal_t: i64) -> usize {
        self.mapped_unverified = false;
        if self.mapped.first().is_some_and(|c| c.min_t == first_wal_t) {
            return 0;
        }
        let n = self.mapped.len();
        self.mapped = Vec::new();
        n
    }

    /// Newest timestamp covered by the mapped chunks: replay skips WAL samples up to it.
    #[inline]
    pub(crate) fn mapped_max_t(&self) -> Option<i64> {
        self.mapped.last().map(|c| c.max_t)
    }

    /// Number of the oldest head chunk file this series references.
    pub(crate) fn first_file(&self) -> Option<u32> {
        self.mapped.first().map(|c| c.r.file())
    }

    /// Whether any chunk overlaps `[mint, maxt]`: exactly when [`MemSeries::chunks_in`] is not empty,
    /// without copying anything.
    pub(crate) fn has_chunks_in(&self, mint: i64, maxt: i64) -> bool {
        self.mapped
            .iter()
            .any(|c| c.max_t >= mint && c.min_t <= maxt)
            || self
                .closed
                .iter()
                .any(|c| c.max_t >= mint && c.min_t <= maxt)
            || self
                .open
                .as_ref()
                .is_some_and(|c| c.app.num_samples() > 0 && c.max_t() >= mint && c.min_t <= maxt)
    }

    /// Chunks overlapping `[mint, maxt]`, oldest first. Mapped chunks are resolved through `disk`; the
    /// open chunk is copied so the query sees a fixed prefix while appends go on.
    pub(crate) fn chunks_in(
        &self,
        mint: i64,
        maxt: i64,
        disk: Option<&HeadChunks>,
    ) -> Vec<SeriesChunk> {
        let mapped = self
            .mapped
            .iter()
            .filter(|c| c.max_t >= mint && c.min_t <= maxt)
            .map(|c| SeriesChunk {
                min_t: c.min_t,
                max_t: c.max_t,
                data: match disk {
                    Some(d) => d.chunk(c.r),
                    None => ChunkData::Failed(Arc::new(crate::read::ChunkFailure {
                        path: std::path::PathBuf::from(crate::chunks_head::DIR_NAME),
                        offset: u64::from(c.r.offset()),
                        reason: "head chunk files are not open".into(),
                    })),
                },
            });
        let mut out: Vec<SeriesChunk> = mapped.collect();
        if !self.closed.is_empty() {
            out.extend(
                self.closed
                    .iter()
                    .filter(|c| c.max_t >= mint && c.min_t <= maxt)
                    .map(|c| SeriesChunk {
                        min_t: c.min_t,
                        max_t: c.max_t,
                        data: ChunkData::Mem(c.data.clone()),
                    }),
            );
            if !self.mapped.is_empty() {
                out.sort_by_key(|c| c.min_t);
            }
        }
        if let Some(c) = &self.open
            && c.app.num_samples() > 0
            && c.max_t() >= mint
            && c.min_t <= maxt
        {
            out.push(SeriesChunk {
                min_t: c.min_t,
                max_t: c.max_t(),
                data: ChunkData::Mem(Arc::from(c.app.to_bytes())),
            });
        }
        out
    }

    pub(crate) fn min_time(&self) -> Option<i64> {
        [
            self.mapped.first().map(|c| c.min_t),
            self.closed.first().map(|c| c.min_t),
            self.open.as_ref().map(|c| c.min_t),
        ]
        .into_iter()
        .flatten()
        .min()
    }

    /// Drops every chunk whose samples are all older than `mint`; returns how many chunks went.
    pub(crate) fn truncate_before(&mut self, mint: i64) -> usize {
        let before = self.closed.len() + self.mapped.len();
        self.closed.retain(|c| c.max_t >= mint);
        self.mapped.retain(|c| c.max_t >= mint);
        let mut removed = before - self.closed.len() - self.mapped.len();
        if let Some(max_t) = self.open.as_ref().map(OpenChunk::max_t)
            && max_t < mint
        {
            self.open = None;
            removed += 1;
            // Nothing committed is left; a pending sample newer than the dropped ones still counts.
            if self.pending_t <= max_t {
                self.pending_t = i64::MIN;
            }
        }
        removed
    }

    /// True when the series holds no samples and no appender holds a pending one.
    pub(crate) fn is_empty(&self) -> bool {
        self.closed.is_empty()
            && self.mapped.is_empty()
            && self.open.is_none()
            && self.pending_t == i64::MIN
    }

    /// Approximate heap bytes of the chunks.
    pub(crate) fn chunk_bytes(&self) -> usize {
        let closed: usize = self.closed.iter().map(|c| c.data.len() + 16).sum();
        closed
            + self.closed.capacity() * std::mem::size_of::<ClosedChunk>()
            + self.mapped.capacity() * std::mem::size_of::<MappedChunk>()
            + self.open.as_ref().map_or(0, |c| c.app.capacity_bytes())
    }
}

/// End of the chunk-range slot that holds `t` (Prometheus' `rangeForTimestamp`).
pub(crate) fn range_for_timestamp(t: i64, width: i64) -> i64 {
    // Floor division so negative timestamps fall in the slot below, matching Go's truncation only for
    // non-negative t; for negative t Go truncates toward zero and so do we, to cut where Prometheus cuts.
    (t / width).saturating_mul(width).saturating_add(width)
}

/// Prometheus' `computeChunkEndTime`: given a chunk started at `start` whose newest sample is at `cur` and
/// which must end by `max_t`, the end time that splits the remaining range into chunks of equal sample count.
pub(crate) fn compute_chunk_end_time(start: i64, cur: i64, max_t: i64, ratio_to_full: f64) -> i64 {
    let n = (max_t as f64 - start as f64) / ((cur as f64 - start as f64 + 1.0) * ratio_to_full);
    if n <= 1.0 {
        return max_t;
    }
    (start as f64 + (max_t as f64 - start as f64) / n.floor()) as i64
}

#[cfg(test)]
mod tests {
    use super::*;

    const OPTS: ChunkOpts = ChunkOpts {
        chunk_range: 2 * 3600 * 1000,
        samples_per_chunk: 120,
    };

    #[test]
    fn chunks_are_cut_near_120_samples_at_15s_interval() {
        let mut s = MemSeries::new(true);
        // 2 h of 15 s samples = 480 samples, in one chunk range.
        for i in 0..480 {
            s.append(1, i * 15_000, i as f64, OPTS, None).unwrap();
        }
        let mut sizes: Vec<u16> = s
            .closed
            .iter()
            .map(|c| XorIterator::new(&c.data).unwrap().num_samples())
            .collect();
        sizes.push(s.open.as_ref().unwrap().app.num_samples());
        assert_eq!(sizes, vec![120, 120, 120, 120]);
    }

    #[test]
    fn no_chunk_crosses_a_chunk_range_boundary() {
        let mut s = MemSeries::new(true);
        let start = OPTS.chunk_range - 10 * 15_000;
        for i in 0..20 {
            s.append(1, start + i * 15_000, 1.0, OPTS, None).unwrap();
        }
        assert_eq!(s.closed.len(), 1);
        assert!(s.closed[0].max_t < OPTS.chunk_range);
        assert!(s.open.as_ref().unwrap().min_t >= OPTS.chunk_range);
    }

    #[test]
    fn a_chunk_is_cut_before_it_passes_1024_bytes() {
        let mut s = MemSeries::new(true);
        // Random values (8 bytes each once the XOR window is full width) with irregular timestamps (2-3 bytes
        // of delta-of-delta each) exceed the byte cap well before 120 samples.
        let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
        for i in 0..120 {
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            s.append(
                1,
                i * 15_000 + (x % 5_000) as i64,
                f64::from_bits(x >> 2),
                OPTS,
                None,
            )
            .unwrap();
        }
        assert!(!s.closed.is_empty());
        for c in &s.closed {
            assert!(c.data.len() <= 1024, "chunk of {} bytes", c.data.len());
        }
    }

    #[test]
    fn duplicate_and_out_of_order_samples_are_told_apart() {
        let mut s = MemSeries::new(true);
        s.append(1, 1000, 1.0, OPTS, None).unwrap();
        assert_eq!(s.check(1000, 1.0).unwrap(), Appended::Duplicate);
        assert!(matches!(
            s.check(1000, 2.0),
            Err(Error::DuplicateSampleForTimestamp { t: 1000 })
        ));
        assert!(matches!(
            s.check(999, 1.0),
            Err(Error::OutOfOrderSample { t: 999, last: 1000 })
        ));
        assert_eq!(s.check(1001, 1.0).unwrap(), Appended::Sample);
        // NaN with identical bits is a duplicate; another NaN payload is not.
        let nan = f64::from_bits(0x7ff8_0000_0000_0001);
        s.append(1, 2000, nan, OPTS, None).unwrap();
        assert_eq!(s.check(2000, nan).unwrap(), Appended::Duplicate);
        assert!(s.check(2000, f64::NAN).is_err());
    }

    #[test]
    fn pending_samples_are_checked_within_a_batch() {
        let mut s = MemSeries::new(true);
        s.append(1, 1000, 1.0, OPTS, None).unwrap();
        s.set_pending(2000, 2.0);
        assert!(matches!(
            s.check(1500, 1.0),
            Err(Error::OutOfOrderSample {
                t: 1500,
                last: 2000
            })
        ));
        s.clear_pending();
        assert_eq!(s.check(1500, 1.0).unwrap(), Appended::Sample);
    }

    #[test]
    fn compute_chunk_end_time_splits_the_range_evenly() {
        // 30 samples at 15 s reached 435 s into a 7200 s range: 7200/(450*4) = 4 chunks -> end at 1800 s.
        assert_eq!(
            compute_chunk_end_time(0, 435_000, 7_200_000, 4.0),
            1_800_000
        );
        assert_eq!(
            compute_chunk_end_time(0, 7_000_000, 7_200_000, 4.0),
            7_200_000
        );
    }
}
#[cfg(test)]
mod size_probe {
    #[test]
    fn print_sizes() {
        eprintln!(
            "SeriesCell {} MemSeries {} OpenChunk {} XorAppender {} ClosedChunk {}",
            std::mem::size_of::<super::SeriesCell>(),
            std::mem::size_of::<super::MemSeries>(),
            std::mem::size_of::<super::OpenChunk>(),
            std::mem::size_of::<crate::chunkenc::XorAppender>(),
            std::mem::size_of::<super::ClosedChunk>()
        );
    }
}
