//! PRIVATE FALLBACKS, to be unified with `crate::functions` by the lead: the range-vector functions
//! over one window of float samples, written because the function library had not landed when the
//! evaluator needed them.
//!
//! Owns only the math of one window: extrapolated `rate`/`increase`/`delta`, `irate`/`idelta`,
//! `deriv`, `predict_linear`, `resets`, `changes`, the `*_over_time` family, `ts_of_*_over_time` and
//! `double_exponential_smoothing`, with Prometheus' numerics (Kahan sums, left-open windows already
//! applied by the caller). It does not own selecting the window, labels, or annotations (`call`).

use super::QueryError;
use super::fallback::{kahan_inc, quantile};

/// The experimental range-selector modifiers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Extension {
    None,
    /// The window also holds the samples of the lookback delta before `range_start`.
    Anchored,
    /// The window also holds the samples of the lookback delta on both sides.
    Smoothed,
}

/// One window of a range-vector function: samples in `(range_start, range_end]` (widened by the
/// lookback delta per [`Extension`]), oldest first, never empty, no staleness markers.
pub(crate) struct Window<'a> {
    pub samples: &'a [(i64, f64)],
    pub range_start: i64,
    pub range_end: i64,
    /// The step's evaluation time (predict_linear regresses around it).
    pub eval_ts: i64,
    pub extension: Extension,
}

/// Functions allowed with `anchored`, in Prometheus' (sorted) listing.
pub(crate) const ANCHORED_SAFE: [&str; 5] = ["changes", "delta", "increase", "rate", "resets"];
/// Functions allowed with `smoothed`.
pub(crate) const SMOOTHED_SAFE: [&str; 3] = ["delta", "increase", "rate"];

/// Names of the range-vector functions this file implements.
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
            | "holt_winters"
    )
}

/// Evaluates range function `name` over `w`; `args` are its scalar arguments at this step, in call
/// order without the range vector. `None`: no output for this series at this step.
pub(crate) fn eval(name: &str, w: &Window<'_>, args: &[f64]) -> Result<Option<f64>, QueryError> {
    let mut s = w.samples;
    if w.extension != Extension::None {
        match name {
            "rate" => return Ok(extended_rate(w, true, true)),
            "increase" => return Ok(extended_rate(w, true, false)),
            "delta" => return Ok(extended_rate(w, false, false)),
            // resets/changes start from the sample in force at the window start.
            _ => match anchored_start(w) {
                Some(first) => s = &s[first..],
                None => return Ok(None),
            },
        }
    }
    let v = match name {
        "rate" => extrapolated_rate(w, true, true),
        "increase" => extrapolated_rate(w, true, false),
        "delta" => extrapolated_rate(w, false, false),
        "irate" => instant_value(s, true),
        "idelta" => instant_value(s, false),
        "deriv" => (s.len() >= 2).then(|| linear_regression(s, s[0].0).0),
        "predict_linear" => (s.len() >= 2).then(|| {
            let (slope, intercept) = linear_regression(s, w.eval_ts);
            slope * args[0] + intercept
        }),
        "resets" => Some(s.windows(2).filter(|p| p[1].1 < p[0].1).count() as f64),
        "changes" => Some(
            s.windows(2)
                .filter(|p| p[1].1 != p[0].1 && !(p[1].1.is_nan() && p[0].1.is_nan()))
                .count() as f64,
        ),
        "avg_over_time" => Some(avg(s)),
        "sum_over_time" => Some(sum(s)),
        "count_over_time" => Some(s.len() as f64),
        "min_over_time" => Some(compare(s, |cur, m| cur < m || m.is_nan()).1),
        "max_over_time" => Some(compare(s, |cur, m| cur > m || m.is_nan()).1),
        "ts_of_min_over_time" => Some(compare(s, |cur, m| cur <= m || m.is_nan()).0 as f64 / 1e3),
        "ts_of_max_over_time" => Some(compare(s, |cur, m| cur >= m || m.is_nan()).0 as f64 / 1e3),
        "last_over_time" => Some(s[s.len() - 1].1),
        "first_over_time" => Some(s[0].1),
        "ts_of_last_over_time" => Some(s[s.len() - 1].0 as f64 / 1e3),
        "ts_of_first_over_time" => Some(s[0].0 as f64 / 1e3),
        "present_over_time" | "absent_over_time" => Some(1.0),
        "stdvar_over_time" => Some(variance(s)),
        "stddev_over_time" => Some(variance(s).sqrt()),
        "quantile_over_time" => {
            let mut vals: Vec<f64> = s.iter().map(|p| p.1).collect();
            Some(quantile(args[0], &mut vals))
        }
        "mad_over_time" => Some(mad(s)),
        "double_exponential_smoothing" | "holt_winters" => {
            double_exponential_smoothing(s, args[0], args[1])?
        }
        other => {
            return Err(QueryError::Execution(format!(
                "function {other} is not implemented"
            )));
        }
    };
    Ok(v)
}

/// `rate`, `increase` and `delta`: the change over the window, extrapolated towards the window's
/// edges (all the way when the first/last sample is within 110 % of the average sample spacing of
/// the edge, else by half a spacing), never below zero for counters.
fn extrapolated_rate(w: &Window<'_>, is_counter: bool, is_rate: bool) -> Option<f64> {
    let s = w.samples;
    if s.len() < 2 {
        return None;
    }
    let (first_t, first_v) = s[0];
    let (last_t, last_v) = s[s.len() - 1];
    let mut result = last_v - first_v;
    if is_counter {
        for p in s.windows(2) {
            if p[1].1 < p[0].1 {
                result += p[0].1;
            }
        }
    }
    let mut to_start = (first_t - w.range_start) as f64 / 1e3;
    let mut to_end = (w.range_end - last_t) as f64 / 1e3;
    let sampled = (last_t - first_t) as f64 / 1e3;
    let avg_spacing = sampled / (s.len() - 1) as f64;
    let threshold = avg_spacing * 1.1;
    if to_start >= threshold {
        to_start = avg_spacing / 2.0;
    }
    if is_counter && result > 0.0 && first_v >= 0.0 {
        // A counter starts at zero: do not extrapolate to before it would have been zero.
        let to_zero = sampled * (first_v / result);
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = avg_spacing / 2.0;
    }
    let mut factor = if sampled != 0.0 {
        (sampled + to_start + to_end) / sampled
    } else {
        1.0
    };
    if is_rate {
        factor /= (w.range_end - w.range_start) as f64 / 1e3;
    }
    Some(result * factor)
}

/// Index of the last sample at or before the window start (or 0 when all are after it); `None`
/// when no sample lies after the start.
fn anchored_start(w: &Window<'_>) -> Option<usize> {
    let after = w.samples.partition_point(|p| p.0 <= w.range_start);
    if after >= w.samples.len() {
        return None;
    }
    Some(after.saturating_sub(1))
}

/// Linear interpolation at `t` between two samples; a counter that dropped is taken to restart from
/// zero.
fn interpolate(p1: (i64, f64), p2: (i64, f64), t: i64, is_counter: bool) -> f64 {
    let y1 = if is_counter && p2.1 < p1.1 { 0.0 } else { p1.1 };
    y1 + (p2.1 - y1) * (t - p1.0) as f64 / (p2.0 - p1.0) as f64
}

/// The bounds of an extended window: the sample in force at the start (index), the last sample
/// to use, and the values at both edges (interpolated when smoothed). `None`: no value.
fn extended_edges(
    f: &[(i64, f64)],
    start: i64,
    end: i64,
    smoothed: bool,
    is_counter: bool,
) -> Option<(usize, usize, f64, f64)> {
    let mut last = f.len() - 1;
    let first = f[..last].partition_point(|p| p.0 <= start).saturating_sub(1);
    if smoothed {
        last = f[..last].partition_point(|p| p.0 < end);
    }
    if f[last].0 <= start {
        return None;
    }
    let left = if smoothed && f[first].0 < start {
        interpolate(f[first], f[first + 1], start, is_counter)
    } else {
        f[first].1
    };
    let right = if smoothed && last > 0 && f[last].0 > end {
        interpolate(f[last - 1], f[last], end, is_counter)
    } else {
        f[last].1
    };
    Some((first, last, left, right))
}

/// `rate`/`increase`/`delta` over an anchored or smoothed window: the difference between the values
/// at the window edges, plus what counter resets inside lost; no extrapolation.
fn extended_rate(w: &Window<'_>, is_counter: bool, is_rate: bool) -> Option<f64> {
    let f = w.samples;
    let smoothed = w.extension == Extension::Smoothed;
    let (mut first, mut last, left, right) =
        extended_edges(f, w.range_start, w.range_end, smoothed, is_counter)?;
    if smoothed && f[first].0 > w.range_end {
        return None;
    }
    let mut result = right - left;
    if is_counter {
        // Samples on or beyond the edges are already in `left`/`right`.
        if f[first].0 <= w.range_start {
            first += 1;
        }
        if f[last].0 >= w.range_end {
            last = last.wrapping_sub(1);
        }
        let inner = if last == usize::MAX || first > last {
            &f[0..0]
        } else {
            &f[first..=last]
        };
        let mut prev = left;
        for p in inner {
            if p.1 < prev {
                result += prev;
            }
            prev = p.1;
        }
        if right < prev {
            result += prev;
        }
    }
    if is_rate {
        result /= (w.range_end - w.range_start) as f64 / 1e3;
    }
    Some(result)
}

/// A standalone anchored/smoothed range selector's samples: the in-window samples framed by the
/// values at both edges (at the edge timestamps).
pub(crate) fn extend_window(
    f: &[(i64, f64)],
    start: i64,
    end: i64,
    smoothed: bool,
) -> Vec<(i64, f64)> {
    if f.is_empty() {
        return Vec::new();
    }
    let Some((mut first, mut last, left, right)) = extended_edges(f, start, end, smoothed, false)
    else {
        return Vec::new();
    };
    if f[first].0 <= start {
        first += 1;
    }
    let mut out = vec![(start, left)];
    if f[last].0 >= end {
        if last == 0 {
            out.push((end, right));
            return out;
        }
        last -= 1;
    }
    if first <= last {
        out.extend_from_slice(&f[first..=last]);
    }
    out.push((end, right));
    out
}

/// A smoothed instant selector at `t`: the sample at `t`, else interpolated between its neighbours,
/// else the last one before `t`. `f` holds the samples of `(t - lookback, t + lookback]`.
pub(crate) fn smoothed_value(f: &[(i64, f64)], t: i64) -> Option<f64> {
    let i = f.partition_point(|p| p.0 < t);
    match f.get(i) {
        Some(&(st, v)) if st == t => Some(v),
        Some(&next) if i > 0 => Some(interpolate(f[i - 1], next, t, false)),
        None if i > 0 => Some(f[i - 1].1),
        _ => None,
    }
}

/// `irate` and `idelta`: from the last two samples.
fn instant_value(s: &[(i64, f64)], is_rate: bool) -> Option<f64> {
    if s.len() < 2 {
        return None;
    }
    let (t0, v0) = s[s.len() - 2];
    let (t1, v1) = s[s.len() - 1];
    let interval = t1 - t0;
    if interval == 0 {
        return None;
    }
    // A counter reset leaves the last value as the increase.
    let mut r = if is_rate && v1 < v0 { v1 } else { v1 - v0 };
    if is_rate {
        r /= interval as f64 / 1e3;
    }
    Some(r)
}

/// Least-squares slope and the intercept at `intercept_t`, with x in seconds from it.
fn linear_regression(s: &[(i64, f64)], intercept_t: i64) -> (f64, f64) {
    let (mut n, mut sum_x, mut cx, mut sum_y, mut cy) = (0.0, 0.0, 0.0, 0.0, 0.0);
    let (mut sum_xy, mut cxy, mut sum_x2, mut cx2) = (0.0, 0.0, 0.0, 0.0);
    let init_y = s[0].1;
    let mut const_y = true;
    for (i, &(t, v)) in s.iter().enumerate() {
        if const_y && i > 0 && v != init_y {
            const_y = false;
        }
        n += 1.0;
        let x = (t - intercept_t) as f64 / 1e3;
        (sum_x, cx) = kahan_inc(x, sum_x, cx);
        (sum_y, cy) = kahan_inc(v, sum_y, cy);
        (sum_xy, cxy) = kahan_inc(x * v, sum_xy, cxy);
        (sum_x2, cx2) = kahan_inc(x * x, sum_x2, cx2);
    }
    if const_y {
        if init_y.is_infinite() {
            return (f64::NAN, f64::NAN);
        }
        return (0.0, init_y);
    }
    let (sum_x, sum_y, sum_xy, sum_x2) = (sum_x + cx, sum_y + cy, sum_xy + cxy, sum_x2 + cx2);
    let cov_xy = sum_xy - sum_x * sum_y / n;
    let var_x = sum_x2 - sum_x * sum_x / n;
    let slope = cov_xy / var_x;
    (slope, sum_y / n - slope * sum_x / n)
}

/// Mean with a Kahan sum, switching to an incremental mean if the sum would overflow.
fn avg(s: &[(i64, f64)]) -> f64 {
    let (mut sum, mut count) = (s[0].1, 1.0);
    let (mut mean, mut c) = (0.0, 0.0);
    let mut incremental = false;
    for (i, &(_, f)) in s.iter().enumerate().skip(1) {
        count = (i + 1) as f64;
        if !incremental {
            let (ns, nc) = kahan_inc(f, sum, c);
            if !ns.is_infinite() {
                (sum, c) = (ns, nc);
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_inc(f / count, q * mean, q * c);
    }
    if incremental {
        mean + c
    } else {
        sum / count + c / count
    }
}

fn sum(s: &[(i64, f64)]) -> f64 {
    let (mut sum, mut c) = (0.0, 0.0);
    for &(_, f) in s {
        (sum, c) = kahan_inc(f, sum, c);
    }
    if sum.is_infinite() { sum } else { sum + c }
}

/// The sample chosen by `better(current, best)` scanning from the first: its time and value.
fn compare(s: &[(i64, f64)], better: impl Fn(f64, f64) -> bool) -> (i64, f64) {
    let (mut t, mut m) = s[0];
    for &(ct, cv) in s {
        if better(cv, m) {
            (t, m) = (ct, cv);
        }
    }
    (t, m)
}

fn variance(s: &[(i64, f64)]) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(_, f) in s {
        count += 1.0;
        let delta = f - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_inc(delta * (f - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

/// Median absolute deviation; NaN if any sample is NaN.
fn mad(s: &[(i64, f64)]) -> f64 {
    if s.iter().any(|p| p.1.is_nan()) {
        return f64::NAN;
    }
    let mut vals: Vec<f64> = s.iter().map(|p| p.1).collect();
    let median = quantile(0.5, &mut vals);
    for v in &mut vals {
        *v = (*v - median).abs();
    }
    quantile(0.5, &mut vals)
}

fn double_exponential_smoothing(
    s: &[(i64, f64)],
    sf: f64,
    tf: f64,
) -> Result<Option<f64>, QueryError> {
    if sf <= 0.0 || sf >= 1.0 {
        return Err(QueryError::Execution(format!(
            "invalid smoothing factor. Expected: 0 < sf < 1, got: {sf:.6}"
        )));
    }
    if tf <= 0.0 || tf >= 1.0 {
        return Err(QueryError::Execution(format!(
            "invalid trend factor. Expected: 0 < tf < 1, got: {tf:.6}"
        )));
    }
    if s.len() < 2 {
        return Ok(None);
    }
    let (mut s0, mut s1) = (0.0, s[0].1);
    let mut b = s[1].1 - s[0].1;
    for (i, &(_, v)) in s.iter().enumerate().skip(1) {
        let x = sf * v;
        if i > 1 {
            b = tf * (s1 - s0) + (1.0 - tf) * b;
        }
        let y = (1.0 - sf) * (s1 + b);
        (s0, s1) = (s1, x + y);
    }
    Ok(Some(s1))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn w(samples: &[(i64, f64)], start: i64, end: i64) -> Window<'_> {
        Window {
            samples,
            range_start: start,
            range_end: end,
            eval_ts: end,
            extension: Extension::None,
        }
    }

    /// `metric 1+1x4 9+1x4` every 15 s (extended_vectors.test).
    fn prom52() -> Vec<(i64, f64)> {
        [1.0, 2.0, 3.0, 4.0, 5.0, 9.0, 10.0, 11.0, 12.0, 13.0]
            .iter()
            .enumerate()
            .map(|(i, &v)| (i as i64 * 15_000, v))
            .collect()
    }

    fn extended(t: i64, ext: Extension) -> Option<f64> {
        let s = prom52();
        let lb = 300_000;
        let (lo, hi) = match ext {
            Extension::Smoothed => (t - 60_000 - lb, t + lb),
            _ => (t - 60_000 - lb, t),
        };
        let win: Vec<_> = s.into_iter().filter(|p| p.0 > lo && p.0 <= hi).collect();
        let w = Window {
            samples: &win,
            range_start: t - 60_000,
            range_end: t,
            eval_ts: t,
            extension: ext,
        };
        eval("increase", &w, &[]).unwrap()
    }

    #[test]
    fn anchored_and_smoothed_increase_match_prometheus_reference() {
        assert_eq!(extended(20_000, Extension::Anchored), Some(1.0));
        assert_eq!(extended(80_000, Extension::Anchored), Some(7.0));
        assert!((extended(5_000, Extension::Smoothed).unwrap() - 1.0 / 3.0).abs() < 1e-9);
        assert!((extended(65_000, Extension::Smoothed).unwrap() - 5.0).abs() < 1e-9);
        assert!((extended(125_000, Extension::Smoothed).unwrap() - 6.0).abs() < 1e-9);
    }

    #[test]
    fn rate_extrapolates_to_window_edges() {
        // 0..=4 at 0,15,30,45,60 s in (0, 60]: samples at 15..60 are 1..4, spacing 15 s.
        let s = [(15_000, 1.0), (30_000, 2.0), (45_000, 3.0), (60_000, 4.0)];
        // Increase 3 over 45 s, extrapolated 15 s to the start (within 1.1 × spacing) but capped
        // by the zero point: 45 × 1/3 = 15 s, so 60 s total → 4.
        let v = eval("increase", &w(&s, 0, 60_000), &[]).unwrap().unwrap();
        assert!((v - 4.0).abs() < 1e-12);
    }

    #[test]
    fn irate_uses_last_two_samples_and_resets() {
        let s = [(0, 10.0), (10_000, 20.0), (20_000, 5.0)];
        assert_eq!(instant_value(&s, true), Some(0.5));
        assert_eq!(instant_value(&s, false), Some(-15.0));
    }
}
