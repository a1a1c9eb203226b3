//! The range-vector functions by name: which library computation one window goes to, with which
//! arguments, and the engine-side pieces of the experimental `anchored`/`smoothed` modifiers.
//!
//! Owns the name → computation table over `crate::functions` (rate family, `*_over_time`,
//! regression, smoothing), the functions each modifier admits, and the two modifier behaviours that
//! are about selecting samples rather than computing over them: the framed samples of a standalone
//! extended range selector (Prometheus' `extendFloats`) and the value of a `smoothed` instant
//! selector. It does not own windows (`range_call`) or the math of a window (`crate::functions`).

use super::QueryError;
use crate::functions::rate::{self, Extension};
use crate::functions::{RangeCtx, over_time, regression, smoothing};

/// One window of a range-vector function: samples in `(ctx.range_start, ctx.range_end]` (widened
/// by the lookback delta under an extension), oldest first, never empty, no staleness markers.
pub(crate) struct Window<'a> {
    pub samples: &'a [(i64, f64)],
    pub ctx: RangeCtx,
    pub extension: Option<Extension>,
    /// The value before each counter reset between two samples of the window, oldest first, when
    /// the caller found them once for the whole series; `None`: found per window.
    pub before_resets: Option<&'a [f64]>,
}

/// Functions allowed with `anchored`, in Prometheus' (sorted) listing.
pub(crate) const ANCHORED_SAFE: [&str; 5] = ["changes", "delta", "increase", "rate", "resets"];
/// Functions allowed with `smoothed`.
pub(crate) const SMOOTHED_SAFE: [&str; 3] = ["delta", "increase", "rate"];

/// Whether `name` is a function over a range vector.
pub(crate) fn is_range_fn(name: &str) -> bool {
    matches!(
        name,
        "rate"
            | "increase"
            | "delta"
            | "irate"
            | "idelta"
            | "deriv"
            | "predict_linear"
            | "resets"
            | "changes"
            | "avg_over_time"
            | "sum_over_time"
            | "count_over_time"
            | "min_over_time"
            | "max_over_time"
            | "last_over_time"
            | "first_over_time"
            | "present_over_time"
            | "absent_over_time"
            | "stddev_over_time"
            | "stdvar_over_time"
            | "quantile_over_time"
            | "mad_over_time"
            | "ts_of_min_over_time"
            | "ts_of_max_over_time"
            | "ts_of_first_over_time"
            | "ts_of_last_over_time"
            | "double_exponential_smoothing"
    )
}

/// Evaluates range function `name` over `w`; `args` are its scalar arguments at this step, in call
/// order without the range vector. `None`: no output for this series at this step.
pub(crate) fn eval(name: &str, w: &Window<'_>, args: &[f64]) -> Result<Option<f64>, QueryError> {
    let mut s = w.samples;
    let ctx = &w.ctx;
    if let Some(ext) = w.extension {
        match name {
            "rate" => return Ok(rate::extended_rate(s, ctx, ext, true, true)),
            "increase" => return Ok(rate::extended_rate(s, ctx, ext, true, false)),
            "delta" => return Ok(rate::extended_rate(s, ctx, ext, false, false)),
            // resets/changes start from the sample in force when the window opens.
            _ => match rate::anchored_window(s, ctx) {
                Some(from) => s = from,
                None => return Ok(None),
            },
        }
    }
    Ok(match name {
        "rate" | "increase" if w.before_resets.is_some() => {
            let before = w.before_resets.unwrap_or_default().iter().copied();
            rate::extrapolated_rate_after_resets(s, ctx, true, name == "rate", before)
        }
        "rate" => rate::extrapolated_rate(s, ctx, true, true),
        "increase" => rate::extrapolated_rate(s, ctx, true, false),
        "delta" => rate::extrapolated_rate(s, ctx, false, false),
        "irate" => rate::irate(s),
        "idelta" => rate::idelta(s),
        "resets" => rate::resets(s),
        "changes" => rate::changes(s),
        "deriv" => regression::deriv(s),
        "predict_linear" => regression::predict_linear(s, ctx, args[0]),
        "avg_over_time" => over_time::avg_over_time(s),
        "sum_over_time" => over_time::sum_over_time(s),
        "count_over_time" => over_time::count_over_time(s),
        "min_over_time" => over_time::min_over_time(s),
        "max_over_time" => over_time::max_over_time(s),
        "ts_of_min_over_time" => over_time::ts_of_min_over_time(s),
        "ts_of_max_over_time" => over_time::ts_of_max_over_time(s),
        "last_over_time" => over_time::last_over_time(s),
        "first_over_time" => over_time::first_over_time(s),
        "ts_of_last_over_time" => over_time::ts_of_last_over_time(s),
        "ts_of_first_over_time" => over_time::ts_of_first_over_time(s),
        "present_over_time" => over_time::present_over_time(s),
        "absent_over_time" => over_time::absent_over_time(s),
        "stdvar_over_time" => over_time::stdvar_over_time(s),
        "stddev_over_time" => over_time::stddev_over_time(s),
        "quantile_over_time" => over_time::quantile_over_time(args[0], s),
        "mad_over_time" => over_time::mad_over_time(s),
        "double_exponential_smoothing" => {
            smoothing::double_exponential_smoothing(s, args[0], args[1])
                .map_err(|e| QueryError::Execution(e.to_string()))?
        }
        other => {
            return Err(QueryError::Execution(format!(
                "function \"{other}\" is not supported"
            )));
        }
    })
}

/// Linear interpolation at `t` between two samples (gauge semantics).
fn interpolate(p1: (i64, f64), p2: (i64, f64), t: i64) -> f64 {
    p1.1 + (p2.1 - p1.1) * (t - p1.0) as f64 / (p2.0 - p1.0) as f64
}

/// A standalone anchored/smoothed range selector's samples (Prometheus' `extendFloats`): the
/// samples strictly inside `(start, end)` framed by the values at both edges, placed at the edge
/// times. `f` holds the samples of the widened window.
pub(crate) fn extend_window(
    f: &[(i64, f64)],
    start: i64,
    end: i64,
    smoothed: bool,
) -> Vec<(i64, f64)> {
    if f.is_empty() {
        return Vec::new();
    }
    let mut last = f.len() - 1;
    let mut first = f[..last]
        .partition_point(|p| p.0 <= start)
        .saturating_sub(1);
    if smoothed {
        last = f[..last].partition_point(|p| p.0 < end);
    }
    if f[last].0 <= start {
        return Vec::new();
    }
    let left = if smoothed && f[first].0 < start {
        interpolate(f[first], f[first + 1], start)
    } else {
        f[first].1
    };
    let right = if smoothed && last > 0 && f[last].0 > end {
        interpolate(f[last - 1], f[last], end)
    } else {
        f[last].1
    };
    if f[first].0 <= start {
        first += 1;
    }
    // One past the last sample strictly before `end`.
    let inner_end = if f[last].0 >= end { last } else { last + 1 };
    let mut out = vec![(start, left)];
    out.extend_from_slice(f.get(first..inner_end).unwrap_or(&[]));
    out.push((end, right));
    out
}

/// A smoothed instant selector at `t`: the sample at `t`, else interpolated between its
/// neighbours, else the last one before `t`. `f` holds the samples of `(t - lookback, t + lookback]`.
pub(crate) fn smoothed_value(f: &[(i64, f64)], t: i64) -> Option<f64> {
    let i = f.partition_point(|p| p.0 < t);
    match f.get(i) {
        Some(&(st, v)) if st == t => Some(v),
        Some(&next) if i > 0 => Some(interpolate(f[i - 1], next, t)),
        None if i > 0 => Some(f[i - 1].1),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `metric 1+1x4 9+1x4` every 15 s (extended_vectors.test).
    fn prom52() -> Vec<(i64, f64)> {
        [1.0, 2.0, 3.0, 4.0, 5.0, 9.0, 10.0, 11.0, 12.0, 13.0]
            .iter()
            .enumerate()
            .map(|(i, &v)| (i as i64 * 15_000, v))
            .collect()
    }

    fn increase(t: i64, ext: Extension) -> Option<f64> {
        let lb = 300_000;
        let hi = if ext == Extension::Smoothed {
            t + lb
        } else {
            t
        };
        let win: Vec<_> = prom52()
            .into_iter()
            .filter(|p| p.0 > t - 60_000 - lb && p.0 <= hi)
            .collect();
        let w = Window {
            samples: &win,
            ctx: RangeCtx::new(t, 60_000, 0),
            extension: Some(ext),
            before_resets: None,
        };
        eval("increase", &w, &[]).unwrap()
    }

    #[test]
    fn extended_increase_matches_prometheus_reference_values() {
        assert_eq!(increase(20_000, Extension::Anchored), Some(1.0));
        assert_eq!(increase(80_000, Extension::Anchored), Some(7.0));
        assert!((increase(5_000, Extension::Smoothed).unwrap() - 1.0 / 3.0).abs() < 1e-9);
        assert!((increase(65_000, Extension::Smoothed).unwrap() - 5.0).abs() < 1e-9);
        assert!((increase(125_000, Extension::Smoothed).unwrap() - 6.0).abs() < 1e-9);
    }

    #[test]
    fn smoothed_instant_value_interpolates_between_neighbours() {
        let s = [(0, 1.0), (10_000, 2.0)];
        assert_eq!(smoothed_value(&s, 5_000), Some(1.5));
        assert_eq!(smoothed_value(&s, 10_000), Some(2.0));
        assert_eq!(smoothed_value(&s, 20_000), Some(2.0));
        assert_eq!(smoothed_value(&s, -1), None);
    }

    #[test]
    fn extended_window_frames_inner_samples_with_edge_values() {
        let s = [(0, 1.0), (10_000, 2.0), (20_000, 3.0)];
        // Anchored over (5s, 15s]: the value in force at 5s (1), then 10s, then the last (2).
        assert_eq!(
            extend_window(&s[..2], 5_000, 15_000, false),
            vec![(5_000, 1.0), (10_000, 2.0), (15_000, 2.0)]
        );
        // Smoothed: both edges interpolated.
        assert_eq!(
            extend_window(&s, 5_000, 15_000, true),
            vec![(5_000, 1.5), (10_000, 2.0), (15_000, 2.5)]
        );
    }
}
