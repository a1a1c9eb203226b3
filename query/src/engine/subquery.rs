//! Subqueries: `expr[range:step] offset o @ t`, evaluated as a range query on their own grid.
//!
//! Owns the grid Prometheus gives a subquery: steps at absolute multiples of the subquery step (so
//! results do not depend on when the outer query runs), from the first multiple strictly after
//! `outer start - offset - range` to `outer end - offset` (the outer end first aligned to the outer
//! grid); with `@ t` the grid ends at `t - offset` instead. The result is a range vector whose
//! samples are the inner evaluation's points. It does not own slicing that range vector into the
//! per-step windows a range function reads (`call`).

use super::QueryError;
use super::eval::Evaluator;
use super::plan::Subquery;
use super::types::{StepSeries, Steps};

impl Evaluator<'_> {
    /// The grid the inner expression of `sq` is evaluated on.
    pub(crate) fn subquery_steps(&self, sq: &Subquery) -> Steps {
        let interval = sq
            .step
            .filter(|&s| s > 0)
            .unwrap_or(self.opts.default_subquery_step_ms.max(1));
        let (first_ref, last_ref) = match sq.at {
            Some(at) => {
                let t = self.at_time(at) - sq.offset;
                (t, t)
            }
            None => {
                // The outer query only ever reaches its last aligned step.
                let s = self.steps;
                let aligned_end = s.start + ((s.end - s.start) / s.interval) * s.interval;
                (s.start - sq.offset, aligned_end - sq.offset)
            }
        };
        let lowest = first_ref - sq.range;
        // The first multiple of the step strictly after `lowest` (the window is left-open).
        let mut start = lowest.div_euclid(interval) * interval;
        if start <= lowest {
            start += interval;
        }
        Steps {
            start,
            end: last_ref,
            interval,
        }
    }

    /// Evaluates the subquery's expression over its grid; each resulting series is a range-vector
    /// series of the outer evaluation.
    pub(crate) fn eval_subquery(&self, sq: &Subquery) -> Result<Vec<StepSeries>, QueryError> {
        let inner = self.child(self.subquery_steps(sq));
        let series = inner.eval(&sq.expr)?.into_series();
        Ok(series
            .into_iter()
            .filter(|s| !s.points.is_empty())
            .collect())
    }
}
