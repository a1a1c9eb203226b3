//! Per-query resource accounting: the deadline, the cancellation flag, the count of samples held in
//! memory (Prometheus' `maxSamples`), and the annotations (warnings and infos) collected on the way.
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
    annotations: RefCell<Annotations>,
}

impl QueryCtx {
    pub(crate) fn new(
        deadline: Instant,
        cancel: Cancel,
        max_samples: usize,
        max_memory_bytes: Option<usize>,
    ) -> QueryCtx {
        QueryCtx {
            deadline,
            cancel,
            max_samples,
            budget: max_memory_bytes.map(|b| (b / SAMPLE_BYTES, b)),
            current: Cell::new(0),
            annotations: RefCell::new(Annotations::new()),
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
