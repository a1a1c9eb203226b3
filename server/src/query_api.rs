//! The PromQL endpoints of Prometheus' HTTP API: `/api/v1/query`, `/api/v1/query_range`,
//! `/api/v1/format_query`, `/api/v1/parse_query` and `/api/v1/query_exemplars`.
//!
//! Owns the query lifecycle over HTTP: reading and checking parameters in Prometheus' order and with
//! its messages, the concurrency gate (`--query.max-concurrency`; time spent waiting for a slot counts
//! against the timeout, as in Prometheus), running the CPU-bound evaluation on the blocking pool with a
//! deadline and a cancellation that fires when the client goes away, mapping engine errors to
//! Prometheus' error types, and writing results byte-for-byte as Prometheus' JSON codec does (see
//! [`crate::query_json`]). It does not own evaluation (`ember_query::engine`) or parsing.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use ember_query::ast::Expr;
use ember_query::engine::{Cancel, Engine, QueryError, QueryOpts, QueryResult, QueryStats};
use serde_json::json;
use tokio::sync::Semaphore;

use crate::api::{ApiError, ready_db, success};
use crate::http::AppState;
use crate::params::parse_time_param;
use crate::params::{Form, MAX_TIME_MS, MIN_TIME_MS, parse_duration, parse_limit, parse_time};
use crate::query_json;

/// The query flags (`--query.*`), Prometheus' defaults in `Default`.
#[derive(Clone, Debug)]
pub struct QueryConfig {
    /// `--query.timeout`: most time one query may take, queueing included.
    pub timeout: Duration,
    /// `--query.max-samples`: most samples one query may hold in memory.
    pub max_samples: usize,
    /// `--query.max-memory`: bytes of samples one query may hold (16 per sample point); 0 for none.
    pub max_memory_bytes: usize,
    /// `--query.lookback-delta`: how far back an instant selector looks.
    pub lookback_delta: Duration,
    /// `--query.max-concurrency`: queries evaluated at once; more wait for a slot.
    pub max_concurrency: usize,
}

impl Default for QueryConfig {
    fn default() -> Self {
        QueryConfig {
            timeout: Duration::from_secs(120),
            max_samples: 50_000_000,
            max_memory_bytes: 0,
            lookback_delta: Duration::from_secs(300),
            max_concurrency: 20,
        }
    }
}

/// The engine options and the concurrency gate shared by all query requests.
pub(crate) struct QueryRuntime {
    opts: QueryOpts,
    gate: Arc<Semaphore>,
}

impl QueryRuntime {
    pub(crate) fn new(cfg: &QueryConfig) -> QueryRuntime {
        QueryRuntime {
            opts: QueryOpts {
                lookback_delta_ms: cfg
                    .lookback_delta
                    .as_millis()
                    .try_into()
                    .unwrap_or(i64::MAX),
                max_samples: cfg.max_samples,
                max_memory_bytes: (cfg.max_memory_bytes > 0).then_some(cfg.max_memory_bytes),
                timeout: cfg.timeout,
                ..QueryOpts::default()
            },
            gate: Arc::new(Semaphore::new(cfg.max_concurrency.max(1))),
        }
    }

    /// The lookback delta in milliseconds (federation uses it too).
    pub(crate) fn lookback_ms(&self) -> i64 {
        self.opts.lookback_delta_ms
    }
}

/// Where and how often a query is evaluated.
#[derive(Clone, Copy, Debug)]
enum Times {
    Instant(i64),
    Range { start: i64, end: i64, step: i64 },
}

/// Per-request knobs besides the times.
struct RunParams {
    /// `timeout` parameter in nanoseconds, if given.
    timeout_ns: Option<i64>,
    /// `lookback_delta` parameter in milliseconds, if given and positive.
    lookback_ms: Option<i64>,
    limit: usize,
    /// The `stats` parameter: `None` when empty (no statistics in the answer).
    stats: Option<StatsParam>,
    stats_warning: Option<String>,
}

/// What the `stats` parameter asks for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum StatsParam {
    /// `true` (and, deprecated, any other non-empty value but `all`): totals.
    Totals,
    /// `all`: totals and per-step counts.
    PerStep,
}

/// The `stats` parameter as Prometheus 3.x reads it: any non-empty value includes statistics, `all`
/// per step too; values other than `true` and `all` still work but draw a deprecation warning.
fn stats_param(form: &Form) -> (Option<StatsParam>, Option<String>) {
    match form.value("stats") {
        "" => (None, None),
        "all" => (Some(StatsParam::PerStep), None),
        "true" => (Some(StatsParam::Totals), None),
        other => (
            Some(StatsParam::Totals),
            Some(format!(
                "value {} for parameter \"stats\" is deprecated and will be rejected in the next \
                 major release, use \"true\" or \"all\"",
                ember_query::functions::gofmt::quote(other)
            )),
        ),
    }
}

fn now_ms() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0, |d| d.as_millis() as i64)
}

/// `timeout` and `lookback_delta`, read after the times as Prometheus does.
fn timeout_and_lookback(form: &Form) -> Result<(Option<i64>, Option<i64>), ApiError> {
    let timeout_ns = match form.value("timeout") {
        "" => None,
        v => Some(parse_duration(v).map_err(|e| ApiError::invalid_param("timeout", e))?),
    };
    let lookback_ms = match form.value("lookback_delta") {
        "" => None,
        v => {
            let ns = parse_duration(v).map_err(|e| {
                ApiError::BadData(format!("error parsing lookback delta duration: {e}"))
            })?;
            // Zero or negative means the server's default, as in Prometheus' engine.
            (ns > 0).then(|| (ns / 1_000_000).max(1))
        }
    };
    Ok((timeout_ns, lookback_ms))
}

/// The expression of the `query` parameter.
fn parse_query(text: &str) -> Result<Expr, ApiError> {
    ember_query::parser::parse(text).map_err(|e| ApiError::invalid_param("query", e))
}

pub async fn query(State(st): State<Arc<AppState>>, form: Form) -> Result<Response, ApiError> {
    let limit =
        parse_limit(form.value("limit")).map_err(|e| ApiError::invalid_param("limit", e))?;
    let t = parse_time_param(&form, "time", now_ms())
        .map_err(|e| ApiError::invalid_param("time", e))?;
    let (timeout_ns, lookback_ms) = timeout_and_lookback(&form)?;
    let text = form.value("query").to_string();
    let expr = parse_query(&text)?;
    let (stats, stats_warning) = stats_param(&form);
    let run = RunParams {
        timeout_ns,
        lookback_ms,
        limit,
        stats,
        stats_warning,
    };
    execute(&st, expr, text, Times::Instant(t), run).await
}

pub async fn query_range(
    State(st): State<Arc<AppState>>,
    form: Form,
) -> Result<Response, ApiError> {
    let limit =
        parse_limit(form.value("limit")).map_err(|e| ApiError::invalid_param("limit", e))?;
    let start = parse_time(form.value("start")).map_err(|e| ApiError::invalid_param("start", e))?;
    let end = parse_time(form.value("end")).map_err(|e| ApiError::invalid_param("end", e))?;
    if end < start {
        return Err(ApiError::invalid_param(
            "end",
            "end timestamp must not be before start time",
        ));
    }
    let step_ns =
        parse_duration(form.value("step")).map_err(|e| ApiError::invalid_param("step", e))?;
    let step_ms = step_ns / 1_000_000;
    if step_ns <= 0 || step_ms == 0 {
        return Err(ApiError::invalid_param(
            "step",
            "zero or negative query resolution step widths are not accepted. Try a positive integer",
        ));
    }
    // Prometheus compares nanoseconds: (end - start) / step > 11000.
    if (i128::from(end) - i128::from(start)) * 1_000_000 / i128::from(step_ns) > 11_000 {
        return Err(ApiError::BadData(
            "exceeded maximum resolution of 11,000 points per timeseries. Try decreasing the query \
             resolution (?step=XX)"
                .into(),
        ));
    }
    let (timeout_ns, lookback_ms) = timeout_and_lookback(&form)?;
    let text = form.value("query").to_string();
    let expr = parse_query(&text)?;
    let (stats, stats_warning) = stats_param(&form);
    let run = RunParams {
        timeout_ns,
        lookback_ms,
        limit,
        stats,
        stats_warning,
    };
    let times = Times::Range {
        start,
        end,
        step: step_ms,
    };
    execute(&st, expr, text, times, run).await
}

/// Cancels the query when dropped before [`CancelOnDrop::disarm`]: axum drops a handler's future when
/// the client disconnects, and the evaluation on the blocking pool then stops at its next check.
struct CancelOnDrop(Option<Cancel>);

impl CancelOnDrop {
    fn disarm(mut self) {
        self.0 = None;
    }
}

impl Drop for CancelOnDrop {
    fn drop(&mut self) {
        if let Some(c) = self.0.take() {
            c.cancel();
        }
    }
}

async fn execute(
    st: &AppState,
    expr: Expr,
    text: String,
    times: Times,
    run: RunParams,
) -> Result<Response, ApiError> {
    let received = Instant::now();
    let db = ready_db(st)?;
    let rt = &st.query;
    let mut budget = rt.opts.timeout;
    if let Some(ns) = run.timeout_ns {
        budget = budget.min(Duration::from_nanos(ns.max(0) as u64));
    }
    let deadline = Instant::now() + budget;
    // Prometheus 2.x's wording; 3.x reports a bare "context deadline exceeded" as an execution error.
    let permit = tokio::time::timeout_at(deadline.into(), rt.gate.clone().acquire_owned())
        .await
        .map_err(|_| ApiError::Timeout("query timed out in query queue".into()))?
        .map_err(|e| ApiError::Internal(e.to_string()))?;
    let queued = received.elapsed();
    let remaining = deadline.saturating_duration_since(Instant::now());
    if remaining.is_zero() {
        // Prometheus checks the deadline once more before evaluating, with this wording.
        return Err(ApiError::Timeout(
            "query timed out in query execution".into(),
        ));
    }
    let mut opts = rt.opts.clone();
    opts.timeout = remaining;
    if let Some(ms) = run.lookback_ms {
        opts.lookback_delta_ms = ms;
    }
    opts.per_step_stats = run.stats == Some(StatsParam::PerStep);
    let cancel = Cancel::new();
    let guard = CancelOnDrop(Some(cancel.clone()));
    let RunParams {
        limit,
        stats,
        stats_warning,
        ..
    } = run;
    // Encoding a large result costs as much CPU as computing it, so both run on the blocking pool.
    let work = tokio::task::spawn_blocking(move || {
        let _permit = permit;
        let engine = Engine::new(opts);
        let eval_started = Instant::now();
        let result = match times {
            Times::Instant(t) => engine.instant_expr(&db, &expr, Some(&text), t, &cancel),
            Times::Range { start, end, step } => {
                engine.range_expr(&db, &expr, Some(&text), start, end, step, &cancel)
            }
        };
        let eval_total = eval_started.elapsed();
        result.map(|mut r| {
            r.warnings.extend(stats_warning);
            let timings = Timings {
                eval_total,
                exec_queue: queued,
                exec_total: received.elapsed(),
            };
            let stats = stats.map(|_| query_json::stats(&r.stats, &timings.into_json(&r.stats)));
            encode(r, limit, stats.as_deref())
        })
    })
    .await;
    guard.disarm();
    let body = work
        .map_err(|e| ApiError::Internal(format!("query evaluation failed: {e}")))?
        .map_err(api_error)?;
    Ok((
        StatusCode::OK,
        [(header::CONTENT_TYPE, "application/json")],
        body,
    )
        .into_response())
}

/// Prometheus' `returnAPIError` plus the errors its `NewInstantQuery`/`NewRangeQuery` return (which
/// the API reports as an invalid `query` parameter).
fn api_error(e: QueryError) -> ApiError {
    match e {
        QueryError::Parse(m) | QueryError::BadRequest(m) => ApiError::invalid_param("query", m),
        QueryError::Execution(m) => ApiError::Execution(m),
        e @ (QueryError::TooManySamples { .. } | QueryError::MemoryBudget { .. }) => {
            ApiError::Execution(e.to_string())
        }
        e @ QueryError::Timeout => ApiError::Timeout(e.to_string()),
        e @ QueryError::Canceled => ApiError::Canceled(e.to_string()),
        QueryError::Storage(m) => ApiError::Internal(m),
    }
}

/// Most annotations of each kind in a response; the rest are counted, as Prometheus does.
const MAX_ANNOTATIONS: usize = 10;

fn cap_annotations(mut v: Vec<String>, kind: &str) -> Vec<String> {
    if v.len() > MAX_ANNOTATIONS {
        let skipped = v.len() - MAX_ANNOTATIONS;
        v.truncate(MAX_ANNOTATIONS);
        v.push(format!("{skipped} more {kind} annotations omitted"));
    }
    v
}

/// The times of a query measured outside the engine.
struct Timings {
    eval_total: Duration,
    exec_queue: Duration,
    exec_total: Duration,
}

impl Timings {
    /// Prometheus' `timings` object, in seconds.
    fn into_json(self, stats: &QueryStats) -> query_json::TimingsJson {
        query_json::TimingsJson {
            eval_total: self.eval_total.as_secs_f64(),
            result_sort: stats.result_sort.as_secs_f64(),
            query_preparation: stats.preparation.as_secs_f64(),
            inner_eval: stats.inner_eval.as_secs_f64(),
            exec_queue: self.exec_queue.as_secs_f64(),
            exec_total: self.exec_total.as_secs_f64(),
        }
    }
}

/// The success envelope of a result: annotations capped, vector or matrix cut to `limit` (0: all),
/// with the `stats` object (already rendered) when asked for.
fn encode(mut result: QueryResult, limit: usize, stats: Option<&str>) -> String {
    let mut warnings = cap_annotations(std::mem::take(&mut result.warnings), "warning");
    let infos = cap_annotations(std::mem::take(&mut result.infos), "info");
    if limit > 0 && query_json::truncate(&mut result.value, limit) {
        warnings.push("results truncated due to limit".into());
    }
    query_json::envelope(&result.value, &warnings, &infos, stats)
}

/// `/api/v1/format_query`: the expression in Prometheus' canonical form.
pub async fn format_query(form: Form) -> Result<Response, ApiError> {
    let expr = parse_query(form.value("query"))?;
    Ok(success(json!(format!("{expr}"))))
}

/// `/api/v1/parse_query`: the syntax tree as JSON, in the shape of Prometheus' `translateAST`.
pub async fn parse_query_ast(form: Form) -> Result<Response, ApiError> {
    let expr = parse_query(form.value("query"))?;
    Ok(success(query_json::ast(&expr)))
}

/// `/api/v1/query_exemplars`: Ember stores no exemplars, so a valid request gets `[]` (or 204 when
/// the expression selects nothing, as Prometheus answers).
pub async fn query_exemplars(form: Form) -> Result<Response, ApiError> {
    let start = parse_time_param(&form, "start", MIN_TIME_MS)
        .map_err(|e| ApiError::invalid_param("start", e))?;
    let end = parse_time_param(&form, "end", MAX_TIME_MS)
        .map_err(|e| ApiError::invalid_param("end", e))?;
    if end < start {
        return Err(ApiError::BadData(
            "end timestamp must not be before start timestamp".into(),
        ));
    }
    let expr = ember_query::parser::parse(form.value("query"))
        .map_err(|e| ApiError::BadData(e.to_string()))?;
    if !query_json::has_selector(&expr) {
        return Ok(StatusCode::NO_CONTENT.into_response());
    }
    Ok(success(json!([])))
}
