//! The PromQL evaluator: runs a parsed expression over an Ember [`Db`] with Prometheus 3.x semantics
//! for float samples, as an instant query (one evaluation time) or a range query (start, end, step).
//!
//! Owns the public entry points ([`Engine`], [`QueryOpts`], [`QueryResult`], [`QueryError`], [`Cancel`])
//! and query-level checks (range parameters, the points-per-series limit, the result type). The
//! evaluation itself is split by concept: `eval` (node dispatch and the per-step loop), `selector`
//! (reading storage), `binary`, `aggregate`, `call` (function dispatch), `classic_histogram`,
//! `info`, `subquery`, `limits` (deadline, cancellation, sample accounting, annotations). Parsing
//! belongs to `crate::parser`; the math of individual functions to `crate::functions`.

mod aggregate;
mod binary;
mod call;
mod classic_histogram;
mod eval;
mod fallback;
mod fold;
mod hash;
mod info;
mod limits;
mod matching;
mod parallel;
mod plan;
mod range_call;
mod rangefns;
mod selector;
mod subquery;
pub mod testengine;
#[cfg(test)]
mod tests;
mod types;

use std::time::{Duration, Instant};

use ember::Db;

pub use limits::{Cancel, SampleStats};

use crate::ast::Expr;

use crate::value::Value;

/// Limits and knobs of the evaluator. `Default` gives Prometheus' defaults.
#[derive(Clone, Debug)]
pub struct QueryOpts {
    /// How far back an instant selector looks for a sample (Prometheus: 5 m).
    pub lookback_delta_ms: i64,
    /// Most samples a query may hold in memory at once (Prometheus: 50 000 000).
    pub max_samples: usize,
    /// Ember's memory budget per query, in bytes of sample points held (16 bytes each, the same
    /// accounting as `max_samples`); `None` for no budget beyond `max_samples`.
    pub max_memory_bytes: Option<usize>,
    /// Wall-clock budget of one query (Prometheus: 2 min).
    pub timeout: Duration,
    /// Most points a range query may return per series: `(end - start) / step` above this is refused
    /// before evaluation (Prometheus' HTTP API: 11 000).
    pub max_points_per_series: usize,
    /// Step of a subquery written without one (`x[5m:]`); Prometheus uses the global evaluation
    /// interval, 1 m by default.
    pub default_subquery_step_ms: i64,
    /// Prometheus' `promql-delayed-name-removal` feature: `__name__` is dropped at the end of
    /// evaluation instead of by each operation (off by default in Prometheus; promqltest runs with it on).
    pub delayed_name_removal: bool,
    /// Keep sample statistics per step of the query's grid (the API's `stats=all`); the totals are
    /// always kept.
    pub per_step_stats: bool,
}

impl Default for QueryOpts {
    fn default() -> Self {
        QueryOpts {
            lookback_delta_ms: 300_000,
            max_samples: 50_000_000,
            max_memory_bytes: None,
            timeout: Duration::from_secs(120),
            max_points_per_series: 11_000,
            default_subquery_step_ms: 60_000,
            delayed_name_removal: false,
            per_step_stats: false,
        }
    }
}

/// A query's value, the annotations raised while computing it, and what computing it took.
#[derive(Clone, Debug)]
pub struct QueryResult {
    pub value: Value,
    /// Texts of `PromQL warning: …` annotations.
    pub warnings: Vec<String>,
    /// Texts of `PromQL info: …` annotations.
    pub infos: Vec<String>,
    pub stats: QueryStats,
}

/// Samples and times of one query, as the HTTP API's `stats` parameter reports them.
#[derive(Clone, Debug, Default)]
pub struct QueryStats {
    pub samples: SampleStats,
    /// Turning the parsed expression into a plan (durations, matchers and functions resolved).
    pub preparation: Duration,
    /// Evaluating the plan.
    pub inner_eval: Duration,
    /// Sorting and shaping the result.
    pub result_sort: Duration,
}

/// Why a query failed. Messages are Prometheus' wording.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum QueryError {
    /// The expression does not parse.
    #[error("{0}")]
    Parse(String),
    /// A query parameter is unusable (step, range, expression type for a range query).
    #[error("{0}")]
    BadRequest(String),
    /// Evaluation failed (duplicate label sets, many-to-many matching, invalid arguments, …).
    #[error("{0}")]
    Execution(String),
    #[error("query processing would load too many samples into memory in query execution")]
    TooManySamples { limit: usize },
    /// The query would hold more than its memory budget (`QueryOpts::max_memory_bytes`).
    #[error(
        "query processing would hold more than {limit} bytes of samples in memory (--query.max-memory)"
    )]
    MemoryBudget { limit: usize },
    #[error("query timed out in expression evaluation")]
    Timeout,
    #[error("query was canceled in expression evaluation")]
    Canceled,
    /// Storage returned an error (e.g. a corrupt chunk).
    #[error("{0}")]
    Storage(String),
}

/// Evaluates PromQL against a [`Db`]. Cheap to share; holds only options.
#[derive(Clone, Debug, Default)]
pub struct Engine {
    opts: QueryOpts,
}

impl Engine {
    pub fn new(opts: QueryOpts) -> Engine {
        Engine { opts }
    }

    pub fn opts(&self) -> &QueryOpts {
        &self.opts
    }

    /// Evaluates `expr` at `t_ms`.
    pub fn instant(&self, db: &Db, expr: &str, t_ms: i64) -> Result<QueryResult, QueryError> {
        self.instant_with(db, expr, t_ms, &Cancel::new())
    }

    /// [`Engine::instant`] with a cancellation handle.
    pub fn instant_with(
        &self,
        db: &Db,
        expr: &str,
        t_ms: i64,
        cancel: &Cancel,
    ) -> Result<QueryResult, QueryError> {
        let parsed = parse(expr)?;
        self.instant_expr(db, &parsed, Some(expr), t_ms, cancel)
    }

    /// Evaluates a parsed expression at `t_ms`. `query` is its text, which annotations take their
    /// `(line:col)` positions from.
    pub fn instant_expr(
        &self,
        db: &Db,
        expr: &Expr,
        query: Option<&str>,
        t_ms: i64,
        cancel: &Cancel,
    ) -> Result<QueryResult, QueryError> {
        self.run(db, expr, query, t_ms, t_ms, 0, cancel)
    }

    /// Evaluates `expr` at `start_ms, start_ms + step_ms, … <= end_ms`; the value is a matrix (series
    /// sorted by labels, each with the steps at which it has a value).
    pub fn range(
        &self,
        db: &Db,
        expr: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
    ) -> Result<QueryResult, QueryError> {
        self.range_with(db, expr, start_ms, end_ms, step_ms, &Cancel::new())
    }

    /// [`Engine::range`] with a cancellation handle.
    pub fn range_with(
        &self,
        db: &Db,
        expr: &str,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        cancel: &Cancel,
    ) -> Result<QueryResult, QueryError> {
        self.check_range(start_ms, end_ms, step_ms)?;
        let parsed = parse(expr)?;
        self.range_expr(db, &parsed, Some(expr), start_ms, end_ms, step_ms, cancel)
    }

    /// Evaluates a parsed expression as a range query (see [`Engine::instant_expr`] for `query`).
    #[allow(clippy::too_many_arguments)]
    pub fn range_expr(
        &self,
        db: &Db,
        expr: &Expr,
        query: Option<&str>,
        start_ms: i64,
        end_ms: i64,
        step_ms: i64,
        cancel: &Cancel,
    ) -> Result<QueryResult, QueryError> {
        self.check_range(start_ms, end_ms, step_ms)?;
        self.run(db, expr, query, start_ms, end_ms, step_ms, cancel)
    }

    #[allow(clippy::too_many_arguments)]
    fn run(
        &self,
        db: &Db,
        expr: &Expr,
        query: Option<&str>,
        start: i64,
        end: i64,
        step: i64,
        cancel: &Cancel,
    ) -> Result<QueryResult, QueryError> {
        let deadline = Instant::now() + self.opts.timeout;
        let times = plan::QueryTimes { start, end, step };
        let prepare_started = Instant::now();
        let plan = plan::lower(expr, &times)?;
        let preparation = prepare_started.elapsed();
        let mut result = eval::run(
            db, &self.opts, &plan, query, start, end, step, deadline, cancel,
        )?;
        result.stats.preparation = preparation;
        Ok(result)
    }

    /// The checks Prometheus' query API makes before running a range query.
    fn check_range(&self, start: i64, end: i64, step: i64) -> Result<(), QueryError> {
        if end < start {
            return Err(QueryError::BadRequest(
                "end timestamp must not be before start time".into(),
            ));
        }
        if step <= 0 {
            return Err(QueryError::BadRequest(
                "zero or negative query resolution step widths are not accepted. Try a positive integer"
                    .into(),
            ));
        }
        if ((end - start) / step) as u128 > self.opts.max_points_per_series as u128 {
            return Err(QueryError::BadRequest(format!(
                "exceeded maximum resolution of {} points per timeseries. Try decreasing the query \
                 resolution (?step=XX)",
                thousands(self.opts.max_points_per_series)
            )));
        }
        Ok(())
    }
}

/// `11000` → `11,000`, as Prometheus writes the limit.
fn thousands(n: usize) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(c);
    }
    out
}

fn parse(expr: &str) -> Result<Expr, QueryError> {
    crate::parser::parse(expr).map_err(|e| QueryError::Parse(e.to_string()))
}
