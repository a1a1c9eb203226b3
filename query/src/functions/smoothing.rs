//! `double_exponential_smoothing(v, sf, tf)` (called `holt_winters` before Prometheus 3).
//!
//! Owns the smoothing recurrence and the factor validation. Does not own the window (see the
//! conventions in [`super`](crate::functions)) or the feature flag Prometheus puts the function
//! behind.

use super::FunctionError;

/// Checks both factors lie strictly inside `(0, 1)`. A NaN factor passes, as in Prometheus
/// (its comparisons are all false), and then makes the result NaN.
pub fn validate_factors(sf: f64, tf: f64) -> Result<(), FunctionError> {
    if sf <= 0.0 || sf >= 1.0 {
        return Err(FunctionError::InvalidSmoothingFactor(sf));
    }
    if tf <= 0.0 || tf >= 1.0 {
        return Err(FunctionError::InvalidTrendFactor(tf));
    }
    Ok(())
}

/// Double exponential smoothing (Holt's linear method) of the window's values with smoothing
/// factor `sf` (lower: older data weighs more) and trend factor `tf` (higher: trends weigh more).
///
/// The level starts at the first value and the trend at the first difference; each later value
/// `x` updates `trend = tf × (s1 − s0) + (1 − tf) × trend` (except on the first step, which keeps
/// the initial trend) and `level = sf × x + (1 − sf) × (level + trend)`. The result is the last
/// level. `Ok(None)` with fewer than two samples; an error for invalid factors.
pub fn double_exponential_smoothing(
    samples: &[(i64, f64)],
    sf: f64,
    tf: f64,
) -> Result<Option<f64>, FunctionError> {
    validate_factors(sf, tf)?;
    if samples.len() < 2 {
        return Ok(None);
    }
    let (mut s0, mut s1) = (0.0, samples[0].1);
    let mut trend = samples[1].1 - samples[0].1;
    for (i, &(_, x)) in samples.iter().enumerate().skip(1) {
        if i > 1 {
            trend = tf * (s1 - s0) + (1.0 - tf) * trend;
        }
        let level = sf * x + (1.0 - sf) * (s1 + trend);
        (s0, s1) = (s1, level);
    }
    Ok(Some(s1))
}

/// The pre-3.0 name of [`double_exponential_smoothing`].
pub fn holt_winters(
    samples: &[(i64, f64)],
    sf: f64,
    tf: f64,
) -> Result<Option<f64>, FunctionError> {
    double_exponential_smoothing(samples, sf, tf)
}
