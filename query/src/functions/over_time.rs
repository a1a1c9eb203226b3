//! The `*_over_time` family over one window of float samples: `avg`, `sum`, `count`, `min`,
//! `max`, `last`, `first`, `present`, `absent` (its per-series part), `quantile`, `stddev`,
//! `stdvar`, `mad`, and the `ts_of_{min,max,first,last}_over_time` timestamps.
//!
//! Owns the numerics (Kahan-compensated sums, the switch to an incremental mean on overflow,
//! the compensated Welford variance) and which sample wins ties. Does not own the window (see the
//! conventions in [`super`](crate::functions)), the labels `absent_over_time` invents, or the
//! invalid-φ warning ([`super::annotations::invalid_quantile`]). Every function returns `None`
//! for an empty window: Prometheus never calls them without samples, and produces nothing.

use super::kahan::kahan_inc;
use super::quantile::quantile;

/// `avg_over_time`: a Kahan-compensated sum divided by the count; should the running sum
/// overflow, the mean continues incrementally (`mean = mean × (n−1)/n + v/n`, compensated), which
/// cannot overflow for finite inputs.
pub fn avg_over_time(samples: &[(i64, f64)]) -> Option<f64> {
    let (&(_, first), rest) = samples.split_first()?;
    let (mut sum, mut c) = (first, 0.0);
    let mut count = 1.0;
    let mut mean = 0.0;
    let mut incremental = false;
    for (i, &(_, v)) in rest.iter().enumerate() {
        count = (i + 2) as f64;
        if !incremental {
            let (new_sum, new_c) = kahan_inc(v, sum, c);
            if !new_sum.is_infinite() {
                (sum, c) = (new_sum, new_c);
                continue;
            }
            incremental = true;
            mean = sum / (count - 1.0);
            c /= count - 1.0;
        }
        let q = (count - 1.0) / count;
        (mean, c) = kahan_inc(v / count, q * mean, q * c);
    }
    Some(if incremental {
        mean + c
    } else {
        sum / count + c / count
    })
}

/// `sum_over_time`: Kahan-compensated; an infinite sum is returned as is.
pub fn sum_over_time(samples: &[(i64, f64)]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let (mut sum, mut c) = (0.0, 0.0);
    for &(_, v) in samples {
        (sum, c) = kahan_inc(v, sum, c);
    }
    Some(if sum.is_infinite() { sum } else { sum + c })
}

/// `count_over_time`.
pub fn count_over_time(samples: &[(i64, f64)]) -> Option<f64> {
    (!samples.is_empty()).then_some(samples.len() as f64)
}

/// The sample that `better(candidate, best)` picks scanning from the first: a NaN best is always
/// replaced, so NaN only wins when every value is NaN.
fn pick(samples: &[(i64, f64)], better: impl Fn(f64, f64) -> bool) -> Option<(i64, f64)> {
    let mut best = *samples.first()?;
    for &(t, v) in samples {
        if better(v, best.1) || best.1.is_nan() {
            best = (t, v);
        }
    }
    Some(best)
}

/// `min_over_time`: the smallest value, ignoring NaN unless all are NaN.
pub fn min_over_time(samples: &[(i64, f64)]) -> Option<f64> {
    pick(samples, |v, m| v < m).map(|p| p.1)
}

/// `max_over_time`: the largest value, ignoring NaN unless all are NaN.
pub fn max_over_time(samples: &[(i64, f64)]) -> Option<f64> {
    pick(samples, |v, m| v > m).map(|p| p.1)
}

/// `ts_of_min_over_time`: the time (seconds) of the *last* sample holding the minimum.
pub fn ts_of_min_over_time(samples: &[(i64, f64)]) -> Option<f64> {
    pick(samples, |v, m| v <= m).map(|p| p.0 as f64 / 1000.0)
}

/// `ts_of_max_over_time`: the time (seconds) of the *last* sample holding the maximum.
pub fn ts_of_max_over_time(samples: &[(i64, f64)]) -> Option<f64> {
    pick(samples, |v, m| v >= m).map(|p| p.0 as f64 / 1000.0)
}

/// `last_over_time`: the newest value.
pub fn last_over_time(samples: &[(i64, f64)]) -> Option<f64> {
    samples.last().map(|p| p.1)
}

/// `first_over_time`: the oldest value.
pub fn first_over_time(samples: &[(i64, f64)]) -> Option<f64> {
    samples.first().map(|p| p.1)
}

/// `ts_of_last_over_time`: the newest sample's time in seconds.
pub fn ts_of_last_over_time(samples: &[(i64, f64)]) -> Option<f64> {
    samples.last().map(|p| p.0 as f64 / 1000.0)
}

/// `ts_of_first_over_time`: the oldest sample's time in seconds.
pub fn ts_of_first_over_time(samples: &[(i64, f64)]) -> Option<f64> {
    samples.first().map(|p| p.0 as f64 / 1000.0)
}

/// `present_over_time`: 1 for any non-empty window.
pub fn present_over_time(samples: &[(i64, f64)]) -> Option<f64> {
    (!samples.is_empty()).then_some(1.0)
}

/// `absent_over_time`, per series: 1 when the window has samples. The evaluator turns "some
/// series had samples" into an empty result and "none had" into one series with value 1 and the
/// labels taken from the selector's equality matchers.
pub fn absent_over_time(samples: &[(i64, f64)]) -> Option<f64> {
    present_over_time(samples)
}

/// `quantile_over_time(phi, …)`: see [`quantile`] for φ outside `[0, 1]` and NaN.
pub fn quantile_over_time(phi: f64, samples: &[(i64, f64)]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let mut values: Vec<f64> = samples.iter().map(|p| p.1).collect();
    Some(quantile(phi, &mut values))
}

/// Population variance by Welford's method with both running terms Kahan-compensated.
fn variance(samples: &[(i64, f64)]) -> f64 {
    let (mut count, mut mean, mut c_mean, mut aux, mut c_aux) = (0.0, 0.0, 0.0, 0.0, 0.0);
    for &(_, v) in samples {
        count += 1.0;
        let delta = v - (mean + c_mean);
        (mean, c_mean) = kahan_inc(delta / count, mean, c_mean);
        (aux, c_aux) = kahan_inc(delta * (v - (mean + c_mean)), aux, c_aux);
    }
    (aux + c_aux) / count
}

/// `stdvar_over_time`: the population variance.
pub fn stdvar_over_time(samples: &[(i64, f64)]) -> Option<f64> {
    (!samples.is_empty()).then(|| variance(samples))
}

/// `stddev_over_time`: the population standard deviation.
pub fn stddev_over_time(samples: &[(i64, f64)]) -> Option<f64> {
    (!samples.is_empty()).then(|| variance(samples).sqrt())
}

/// `mad_over_time`: the median of the absolute deviations from the median. Any NaN makes the
/// median undefined, so the result is NaN.
pub fn mad_over_time(samples: &[(i64, f64)]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    if samples.iter().any(|p| p.1.is_nan()) {
        return Some(f64::NAN);
    }
    let mut values: Vec<f64> = samples.iter().map(|p| p.1).collect();
    let median = quantile(0.5, &mut values);
    for v in &mut values {
        *v = (*v - median).abs();
    }
    Some(quantile(0.5, &mut values))
}
