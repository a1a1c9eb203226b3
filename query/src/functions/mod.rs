//! The PromQL function library: pure computations over plain data with the float semantics of
//! Prometheus 3.x (`promql/functions.go`, `promql/quantile.go`, the aggregation math of
//! `promql/engine.go`).
//!
//! Owns: the math of every float-valued PromQL function and aggregation, the annotations
//! (warnings/infos) those computations can raise, and the Go-compatible formatting/parsing
//! helpers their results and messages need. Does not own: the parser or AST, selecting samples
//! from storage, stepping through a range query, grouping series, dropping `__name__`, positions
//! in the query text, or native histograms (Ember stores none). Callers pass plain values
//! (`&[(i64, f64)]` windows, `f64`s, [`ember_index::Labels`]) and get plain values back.
//!
//! # Conventions shared by all range-vector functions
//!
//! * A window holds the samples with timestamps in `(range_start, range_end]`, oldest first:
//!   Prometheus 3 range selectors are left-open (`matrixIterSlice` keeps `t > mint`). The
//!   `anchored`/`smoothed` variants additionally receive the lookback-delta samples around the
//!   window; see [`rate::extended_rate`].
//! * **Staleness:** the evaluator removes staleness markers before calling any function here, as
//!   Prometheus' iterators do. A stale NaN passed in is treated as an ordinary NaN.
//! * `None` means "no output sample for this series at this step" (Prometheus appends nothing).
//! * Timestamps are milliseconds; results that are times are seconds (`t / 1000`).

pub mod aggregate;
pub mod annotations;
pub mod gofmt;
pub mod histogram;
pub mod kahan;
pub mod labels;
pub mod math;
pub mod over_time;
pub mod quantile;
pub mod rate;
pub mod regression;
pub mod smoothing;
pub mod time;

mod goregex;

pub use annotations::{Annotation, Annotations, Severity};

/// Errors a function call can fail the whole query with (Prometheus panics with these messages,
/// which the engine turns into an execution error).
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum FunctionError {
    /// `double_exponential_smoothing` with a smoothing factor outside `(0, 1)`.
    #[error("invalid smoothing factor. Expected: 0 < sf < 1, got: {}", gofmt::format_f(*.0, 6))]
    InvalidSmoothingFactor(f64),
    /// `double_exponential_smoothing` with a trend factor outside `(0, 1)`.
    #[error("invalid trend factor. Expected: 0 < tf < 1, got: {}", gofmt::format_f(*.0, 6))]
    InvalidTrendFactor(f64),
    /// `label_replace` with a regular expression that does not compile.
    #[error("invalid regular expression in label_replace(): {0}")]
    InvalidRegex(String),
    /// `label_replace`/`label_join` with an invalid destination label name.
    #[error("invalid destination label name in {function}(): {name}")]
    InvalidDestinationLabel {
        function: &'static str,
        name: String,
    },
    /// `label_join` with an invalid source label name.
    #[error("invalid source label name in label_join(): {0}")]
    InvalidSourceLabel(String),
}

/// Where a range-vector function's window lies.
///
/// Prometheus computes `range_start = ts - (range + offset)` and `range_end = ts - offset` for the
/// step's evaluation time `ts` (after resolving `@`); `rate` divides by the selector range, and
/// `predict_linear` regresses around `ts` itself, not `range_end`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct RangeCtx {
    /// Exclusive lower bound of the window, in milliseconds.
    pub range_start: i64,
    /// Inclusive upper bound of the window (the evaluation time minus any offset), in milliseconds.
    pub range_end: i64,
    /// The selector's range in milliseconds (`range_end - range_start`).
    pub range_ms: i64,
    /// The step's evaluation time in milliseconds.
    pub eval_ts: i64,
}

impl RangeCtx {
    /// The window of a selector with range `range_ms` and offset `offset_ms` evaluated at `eval_ts`.
    pub fn new(eval_ts: i64, range_ms: i64, offset_ms: i64) -> RangeCtx {
        let range_end = eval_ts - offset_ms;
        RangeCtx {
            range_start: range_end - range_ms,
            range_end,
            range_ms,
            eval_ts,
        }
    }

    /// The range in seconds exactly as Go's `time.Duration.Seconds()` computes it: whole seconds
    /// plus the remainder's nanoseconds divided by 1e9 (two roundings, not one `ms / 1000`).
    pub fn range_seconds(&self) -> f64 {
        duration_seconds(self.range_ms)
    }
}

/// Go's `time.Duration(ms * 1e6).Seconds()`.
pub(crate) fn duration_seconds(ms: i64) -> f64 {
    let whole = ms / 1000;
    let nanos = (ms % 1000) * 1_000_000;
    whole as f64 + nanos as f64 / 1e9
}
