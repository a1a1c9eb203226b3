//! Batched, atomic appends through the embedding API.
//!
//! Owns the commit protocol: samples are checked when appended (so the caller learns at once about
//! out-of-order or duplicate samples), held until [`Appender::commit`], then written to the WAL as one
//! `log` call — series records for new series first, then one samples record — and only after the WAL
//! accepted them applied to the head. A commit that returns `Ok` is therefore in the WAL (and fsynced under
//! the default sync policy). It does not own chunk encoding or the WAL format.

use std::sync::Arc;
use std::sync::atomic::Ordering;

use ember_index::{Labels, SeriesRef};
use ember_wal::record::{self, RefSample, RefSeries};

use crate::db::DbInner;
use crate::error::{Error, Result};
use crate::head::IdentityHasher;
use crate::head::series::{Appended, SeriesCell};

type IdSet = std::collections::HashSet<SeriesRef, std::hash::BuildHasherDefault<IdentityHasher>>;

struct Pending {
    cell: Arc<SeriesCell>,
    t: i64,
    v: f64,
}

/// Collects samples for many series and commits them together. Dropping an appender without committing
/// rolls it back.
pub struct Appender {
    db: Arc<DbInner>,
    samples: Vec<Pending>,
    /// Series whose series record is not yet in the WAL, to be logged with this batch.
    unlogged: Vec<Arc<SeriesCell>>,
    /// Refs in `unlogged`, so a batch creating many series stays linear.
    unlogged_refs: IdSet,
    min_valid: i64,
    buf_series: Vec<u8>,
    buf_samples: Vec<u8>,
    wal_samples: Vec<RefSample>,
    /// The series [`Appender::get_ref`] found last.
    found: Option<Arc<SeriesCell>>,
    /// Oldest timestamp among `samples`, checked again at commit.
    oldest: i64,
}

impl Appender {
    pub(crate) fn new(db: Arc<DbInner>) -> Self {
        let min_valid = db.head.min_valid_time();
        Appender {
            db,
            samples: Vec::new(),
            unlogged: Vec::new(),
            unlogged_refs: IdSet::default(),
            min_valid,
            buf_series: Vec::new(),
            buf_samples: Vec::new(),
            wal_samples: Vec::new(),
            found: None,
            oldest: i64::MAX,
        }
    }

    /// Adds a sample for the series named by `labels`, creating the series if needed, and returns its ref,
    /// which later samples of the same series may use with [`Appender::append_ref`] to skip the lookup.
    pub fn append(&mut self, labels: &Labels, t: i64, v: f64) -> Result<SeriesRef> {
        self.check_bounds(t)?;
        if labels.is_empty() {
            return Err(Error::EmptyLabelSet);
        }
        let (cell, _) = self.db.head.get_or_create(labels, false, None)?;
        let r = cell.r;
        self.add(cell, t, v)?;
        Ok(r)
    }

    /// Adds a sample for a series by the ref an earlier [`Appender::append`] or [`Appender::get_ref`]
    /// returned.
    pub fn append_ref(&mut self, r: SeriesRef, t: i64, v: f64) -> Result<()> {
        self.check_bounds(t)?;
        let cell = match self.found.take() {
            Some(c) if c.r == r => c,
            _ => self.db.head.get(r).ok_or(Error::UnknownSeriesRef(r))?,
        };
        self.add(cell, t, v)
    }

    /// The ref of the series whose label set these raw `(name, value)` pairs spell, if it exists, found
    /// without building a [`Labels`] (as Prometheus' `Appender.GetRef`). The pairs must be in name order
    /// with unique names (out-of-order pairs find nothing); pairs with an empty value are skipped, as
    /// [`Labels::new`] drops them. `None` means the caller must build the label set and use
    /// [`Appender::append`], which validates it and creates the series.
    pub fn get_ref(&mut self, pairs: &[(&[u8], &[u8])]) -> Option<SeriesRef> {
        let cell = self.db.head.lookup_bytes(pairs)?;
        let r = cell.r;
        // The next append_ref is almost always for this series: keep it to skip the lookup by ref.
        self.found = Some(cell);
        Some(r)
    }

    /// Number of samples waiting for commit.
    pub fn len(&self) -> usize {
        self.samples.len()
    }

    pub fn is_empty(&self) -> bool {
        self.samples.is_empty()
    }

    fn check_bounds(&self, t: i64) -> Result<()> {
        if t < self.min_valid {
            return Err(Error::OutOfBounds {
                t,
                min_valid: self.min_valid,
            });
        }
        Ok(())
    }

    fn add(&mut self, cell: Arc<SeriesCell>, t: i64, v: f64) -> Result<()> {
        {
            let mut s = cell.state.lock();
            match s.check(t, v)? {
                Appended::Duplicate => return Ok(()),
                Appended::Sample => s.set_pending(t, v),
            }
            if !s.logged && self.unlogged_refs.insert(cell.r) {
                self.unlogged.push(cell.clone());
            }
        }
        self.oldest = self.oldest.min(t);
        self.samples.push(Pending { cell, t, v });
        Ok(())
    }

    /// Writes the batch to the WAL, then makes it visible to queries. On error nothing of the batch is
    /// acknowledged and the head is unchanged.
    pub fn commit(mut self) -> Result<()> {
        if self.samples.is_empty() {
            return Ok(());
        }
        if self.db.is_closed() {
            self.rollback_pending();
            return Err(Error::Closed);
        }
        let db = self.db.clone();
        let _gate = db.commit_gate.read();
        // The head may have been compacted since this appender checked its samples: a sample below the
        // new floor would land in a range a block already holds and be dropped at the next truncation.
        let floor = self.db.head.min_valid_floor();
        if self.oldest < floor {
            let t = self.oldest;
            self.rollback_pending();
            return Err(Error::OutOfBounds {
                t,
                min_valid: floor,
            });
        }
        if let Err(e) = self.write_wal() {
            self.rollback_pending();
            return Err(e);
        }
        for cell in self.unlogged.drain(..) {
            cell.state.lock().logged = true;
        }
        self.unlogged_refs.clear();
        let head = &self.db.head;
        let (mut mint, mut maxt) = (i64::MAX, i64::MIN);
        let mut appended = 0u64;
        let mut rejected = 0u64;
        for p in self.samples.drain(..) {
            let res = p
                .cell
                .state
                .lock()
                .append(p.cell.r, p.t, p.v, head.opts, head.disk());
            match res {
                Ok(Appended::Sample) => {
                    appended += 1;
                    mint = mint.min(p.t);
                    maxt = maxt.max(p.t);
                }
                Ok(Appended::Duplicate) => {}
                // Another appender committed a newer sample of this series in between; Prometheus drops
                // the sample the same way, and replay will drop it again.
                Err(_) => rejected += 1,
            }
        }
        if appended > 0 {
            head.update_time_range(mint, maxt);
        }
        head.stats
            .samples_appended
            .fetch_add(appended, Ordering::Relaxed);
        head.stats
            .out_of_order_samples
            .fetch_add(rejected, Ordering::Relaxed);
        Ok(())
    }

    fn write_wal(&mut self) -> Result<()> {
        self.buf_series.clear();
        self.buf_samples.clear();
        if !self.unlogged.is_empty() {
            let series: Vec<RefSeries> = self
                .unlogged
                .iter()
                .map(|c| RefSeries {
                    r: c.r,
                    labels: self.db.head.symbols.resolve(&c.labels),
                })
                .collect();
            record::encode_series(&series, &mut self.buf_series);
        }
        self.wal_samples.clear();
        self.wal_samples
            .extend(self.samples.iter().map(|p| RefSample {
                r: p.cell.r,
                t: p.t,
                v: p.v,
            }));
        record::encode_samples(&self.wal_samples, &mut self.buf_samples);
        if self.buf_series.is_empty() {
            self.db.wal.log(&[&self.buf_samples])?;
        } else {
            self.db.wal.log(&[&self.buf_series, &self.buf_samples])?;
        }
        Ok(())
    }

    /// Discards the batch.
    pub fn rollback(mut self) {
        self.rollback_pending();
    }

    fn rollback_pending(&mut self) {
        self.oldest = i64::MAX;
        for p in self.samples.drain(..) {
            p.cell.state.lock().clear_pending();
        }
        self.unlogged.clear();
        self.unlogged_refs.clear();
    }
}

impl Drop for Appender {
    fn drop(&mut self) {
        self.rollback_pending();
    }
}
