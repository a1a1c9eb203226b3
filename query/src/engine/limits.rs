//! Per-query resource accounting: the deadline, the cancellation flag, the count of samples held in
//! memory (Prometheus' `maxSamples`), the sample statistics of the API's `stats` parameter, and the
//! annotations (warnings and infos) collected on the way.
//!
//! Owns [`QueryCtx`] and [`Cancel`]. Every evaluator of a query — including the child evaluators of
//! subqueries and step-invariant subtrees — shares one `QueryCtx`, so the sample count and the
//! annotations are query-wide, as in Prometheus. It does not own what counts as a sample: the
//! evaluator decides when samples are taken and released, following Prometheus' accounting.

use std::cell::{Cell, RefCell};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Instant;

use super::QueryError;
use super::types::Steps;
use crate::functions::{Annotation, Annotations};

/// A cancellation handle. Clone it, hand one clone to the query and call [`Cancel::cancel`] on another
/// (from any thread); the query stops at its next check (between steps or series) with
/// [`QueryError::Canceled`].
#[derive(Clone, Debug, Default)]
pub struct Cancel(Arc<AtomicBool>);

impl Cancel {
    pub fn new() -> Cancel {
        Cancel::default()
    }

    pub fn cancel(&self) {
        self.0.store(true, Ordering::Relaxed);
    }

    pub fn is_canceled(&self) -> bool {
        self.0.load(Ordering::Relaxed)
    }
}

/// Bytes a held sample point costs in the memory budget: its timestamp and value.
const SAMPLE_BYTES: usize = 16;

/// The state one query shares across all its evaluators.
pub(crate) struct QueryCtx {
    deadline: Instant,
    cancel: Cancel,
    max_samples: usize,
    /// `max_samples` as implied by the memory budget, and the budget itself in bytes.
    budget: Option<(usize, usize)>,
    /// Samples currently held, as Prometheus counts them (`ev.currentSamples`).
    current: Cell<usize>,
    /// The most samples held at once (Prometheus' `peakSamples`).
    peak: Cell<usize>,
    /// Samples the selectors handed to the evaluation, summed over steps
    /// (`totalQueryableSamples`), and distinct samples read from storage (`samplesRead`).
    queryable: Cell<u64>,
    read: Cell<u64>,
    /// The same two per step of the query's grid, when per-step statistics were asked for.
    per_step: Option<PerStep>,
    annotations: RefCell<Annotations>,
}

/// Per-step sample counts over the query's own grid.
struct PerStep {
    steps: Steps,
    queryable: RefCell<Vec<u64>>,
    read: RefCell<Vec<u64>>,
}

/// What a query read and held, for the HTTP API's `stats` parameter.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct SampleStats {
    /// Samples the selectors gave the evaluation, summed over steps: an instant selector counts one
    /// per series and step, a range function the whole window at each step (windows overlap).
    pub total_queryable: u64,
    /// Distinct samples read from storage: as `total_queryable`, but a sample seen by several
    /// overlapping windows counts once.
    pub read: u64,
    /// The most samples the query held at once.
    pub peak: usize,
    /// `(step timestamp, total_queryable, read)` per step, when asked for (`stats=all`). Samples
    /// read by a subquery's inner evaluation count in the totals only: its grid is not the query's.
    pub per_step: Option<Vec<(i64, u64, u64)>>,
}

impl QueryCtx {
    pub(crate) fn new(
        deadline: Instant,
        cancel: Cancel,
        max_samples: usize,
        max_memory_bytes: Option<usize>,
        per_step: Option<Steps>,
    ) -> QueryCtx {
        QueryCtx {
            deadline,
            cancel,
            max_samples,
            budget: max_memory_bytes.map(|b| (b / SAMPLE_BYTES, b)),
            current: Cell::new(0),
            peak: Cell::new(0),
            queryable: Cell::new(0),
            read: Cell::new(0),
            per_step: per_step.map(|steps| PerStep {
                steps,
                queryable: RefCell::new(vec![0; steps.count()]),
                read: RefCell::new(vec![0; steps.count()]),
            }),
            annotations: RefCell::new(Annotations::new()),
        }
    }

    /// Whether per-step statistics are kept (callers skip computing per-step counts otherwise).
    pub(crate) fn per_step(&self) -> bool {
        self.per_step.is_some()
    }

    /// Counts samples a selector gave the evaluation: `queryable` as the evaluation uses them,
    /// `read` of them new from storage. `step` is the step of the query's grid they belong to, or
    /// `None` (inside a subquery) for the totals only.
    pub(crate) fn count_samples(&self, step: Option<i64>, queryable: u64, read: u64) {
        self.queryable.set(self.queryable.get() + queryable);
        self.read.set(self.read.get() + read);
        if let (Some(p), Some(ts)) = (&self.per_step, step) {
            let i = p.steps.index(ts);
            if let Some(q) = p.queryable.borrow_mut().get_mut(i) {
                *q += queryable;
            }
            if let Some(r) = p.read.borrow_mut().get_mut(i) {
                *r += read;
            }
        }
    }

    pub(crate) fn sample_stats(&self) -> SampleStats {
        SampleStats {
            total_queryable: self.queryable.get(),
            read: self.read.get(),
            peak: self.peak.get(),
            per_step: self.per_step.as_ref().map(|p| {
                let q = p.queryable.borrow();
                let r = p.read.borrow();
                p.steps
                    .iter()
                    .zip(q.iter().zip(r.iter()))
                    .map(|(ts, (&q, &r))| (ts, q, r))
                    .collect()
            }),
        }
    }

    /// Fails if the query was canceled or ran past its deadline. Called between steps and between
    /// series; reading the clock costs tens of nanoseconds, negligible next to a step's work.
    pub(crate) fn check(&self) -> Result<(), QueryError> {
        check_interrupt(&self.cancel, self.deadline)
    }

    /// The deadline and cancellation flag alone, to check from worker threads (the rest of the
    /// context is single-threaded).
    pub(crate) fn interrupt(&self) -> Interrupt {
        Interrupt {
            deadline: self.deadline,
            cancel: self.cancel.clone(),
        }
    }

    /// The most samples the query may hold: `max_samples`, or fewer under a memory budget.
    pub(crate) fn max_samples(&self) -> usize {
        self.budget
            .map_or(self.max_samples, |(n, _)| n.min(self.max_samples))
    }

    pub(crate) fn current(&self) -> usize {
        self.current.get()
    }

    /// Sets the held-sample count (Prometheus resets it to a saved value at each step) and checks the
    /// limit.
    pub(crate) fn set(&self, n: usize) -> Result<(), QueryError> {
        self.current.set(n);
        if n > self.peak.get() {
            self.peak.set(n);
        }
        self.check_limits(n)
    }

    /// Checks the limits as if `extra` more samples were held for a moment (a range function's
    /// window), without counting them as held or towards the peak statistic.
    pub(crate) fn check_extra(&self, extra: usize) -> Result<(), QueryError> {
        self.check_limits(self.current.get().saturating_add(extra))
    }

    fn check_limits(&self, n: usize) -> Result<(), QueryError> {
        if n > self.max_samples {
            return Err(QueryError::TooManySamples {
                limit: self.max_samples,
            });
        }
        if let Some((samples, bytes)) = self.budget
            && n > samples
        {
            return Err(QueryError::MemoryBudget { limit: bytes });
        }
        Ok(())
    }

    /// Records for the peak statistic that `extra` samples are held besides the counted ones (a
    /// range function's last window while its output is counted, as Prometheus measures it).
    pub(crate) fn note_peak(&self, extra: usize) {
        let n = self.current.get().saturating_add(extra);
        if n > self.peak.get() {
            self.peak.set(n);
        }
    }

    /// Takes `n` more samples into memory.
    pub(crate) fn add(&self, n: usize) -> Result<(), QueryError> {
        self.set(self.current.get().saturating_add(n))
    }

    /// Releases `n` samples.
    pub(crate) fn release(&self, n: usize) {
        self.current.set(self.current.get().saturating_sub(n));
    }

    /// Records an annotation raised at `position` (`line:col` in the query, when known).
    pub(crate) fn annotate(&self, a: Annotation, position: Option<&str>) {
        self.annotations.borrow_mut().add(a, position);
    }

    pub(crate) fn take_annotations(&self) -> Annotations {
        std::mem::take(&mut *self.annotations.borrow_mut())
    }
}

/// What [`QueryCtx::check`] looks at, shareable across threads.
#[derive(Clone, Debug)]
pub(crate) struct Interrupt {
    deadline: Instant,
    cancel: Cancel,
}

impl Interrupt {
    /// As [`QueryCtx::check`].
    pub(crate) fn check(&self) -> Result<(), QueryError> {
        check_interrupt(&self.cancel, self.deadline)
    }
}

fn check_interrupt(cancel: &Cancel, deadline: Instant) -> Result<(), QueryError> {
    if cancel.is_canceled() {
        return Err(QueryError::Canceled);
    }
    if Instant::now() >= deadline {
        return Err(QueryError::Timeout);
    }
    Ok(())
}
