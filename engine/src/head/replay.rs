//! Rebuilding the head from the WAL on open: the last checkpoint, then every later segment.
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
}

struct Replayer<'h> {
    head: &'h Head,
    /// Ref in the WAL -> series in the head. Usually the same ref; differs when the WAL defined one label
    /// set twice under two refs.
    refs: IdMap<Arc<SeriesCell>>,
    series: Vec<RefSeries>,
    samples: Vec<RefSample>,
    stones: Vec<Tombstone>,
    stats: ReplayStats,
    mint: i64,
    maxt: i64,
}

/// Replays `wal_dir` into `head`. `repair` allows cutting the log at a corruption that is not a torn tail.
pub(crate) fn replay(head: &Head, wal_dir: &Path, repair: bool) -> Result<ReplayStats> {
    let mut r = Replayer {
        head,
        refs: IdMap::default(),
        series: Vec::new(),
        samples: Vec::new(),
        stones: Vec::new(),
        stats: ReplayStats::default(),
        mint: i64::MAX,
        maxt: i64::MIN,
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
                for s in self.series.drain(..) {
                    let (cell, _) = self.head.get_or_create(&s.labels, true, Some(s.r))?;
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
                    let Some(cell) = self.refs.get(&st.r) else {
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
        let floor = self.head.min_valid_floor();
        let mut i = 0;
        let samples = &self.samples;
        while i < samples.len() {
            // Records hold runs of samples of one series often enough that locking once per run pays.
            let r: SeriesRef = samples[i].r;
            let mut j = i + 1;
            while j < samples.len() && samples[j].r == r {
                j += 1;
            }
            match self.refs.get(&r) {
                None => self.stats.unknown_ref_samples += (j - i) as u64,
                Some(cell) => {
                    let mut s = cell.state.lock();
                    for smp in &samples[i..j] {
                        if smp.t < floor {
                            self.stats.samples_in_blocks += 1;
                            continue;
                        }
                        match s.append(smp.t, smp.v, opts) {
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
