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

/// Annotations in first-seen order, deduplicated by text (Prometheus keys them by message).
#[derive(Debug, Default)]
pub(crate) struct Annotations {
    pub warnings: Vec<String>,
    pub infos: Vec<String>,
}

impl Annotations {
    fn push(list: &mut Vec<String>, msg: String) {
        if !list.contains(&msg) {
            list.push(msg);
        }
    }
}

/// The state one query shares across all its evaluators.
pub(crate) struct QueryCtx {
    deadline: Instant,
    cancel: Cancel,
    max_samples: usize,
    /// Samples currently held, as Prometheus counts them (`ev.currentSamples`).
    current: Cell<usize>,
    peak: Cell<usize>,
    annotations: RefCell<Annotations>,
}

impl QueryCtx {
    pub(crate) fn new(deadline: Instant, cancel: Cancel, max_samples: usize) -> QueryCtx {
        QueryCtx {
            deadline,
            cancel,
            max_samples,
            current: Cell::new(0),
            peak: Cell::new(0),
            annotations: RefCell::new(Annotations::default()),
        }
    }

    /// Fails if the query was canceled or ran past its deadline. Called between steps and between
    /// series; reading the clock costs tens of nanoseconds, negligible next to a step's work.
    pub(crate) fn check(&self) -> Result<(), QueryError> {
        if self.cancel.is_canceled() {
            return Err(QueryError::Canceled);
        }
        if Instant::now() >= self.deadline {
            return Err(QueryError::Timeout);
        }
        Ok(())
    }

    pub(crate) fn current(&self) -> usize {
        self.current.get()
    }

    /// Sets the held-sample count (Prometheus resets it to a saved value at each step) and checks the
    /// limit.
    pub(crate) fn set(&self, n: usize) -> Result<(), QueryError> {
        self.current.set(n);
        self.peak.set(self.peak.get().max(n));
        if n > self.max_samples {
            return Err(QueryError::TooManySamples {
                limit: self.max_samples,
            });
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

    /// The most samples held at once so far.
    pub(crate) fn peak(&self) -> usize {
        self.peak.get()
    }

    pub(crate) fn warn(&self, msg: String) {
        Annotations::push(&mut self.annotations.borrow_mut().warnings, msg);
    }

    pub(crate) fn info(&self, msg: String) {
        Annotations::push(&mut self.annotations.borrow_mut().infos, msg);
    }

    pub(crate) fn take_annotations(&self) -> Annotations {
        std::mem::take(&mut self.annotations.borrow_mut())
    }
}
