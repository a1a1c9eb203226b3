//! Functions about change over a window: `rate`, `increase`, `delta` (extrapolated, and the
//! experimental `anchored`/`smoothed` variants), `irate`, `idelta`, `resets`, `changes`.
//!
//! Owns the arithmetic of one window of float samples (see the conventions in
//! [`super`](crate::functions)). Does not own selecting the window, the "might not be a counter"
//! info (see [`super::annotations::possible_non_counter`]), native histograms, or start
//! timestamps (Prometheus' `use-start-timestamps` feature; Ember stores none).

use super::RangeCtx;

/// `rate` (`is_counter`, `is_rate`), `increase` (`is_counter`) and `delta` (neither) over the
/// samples in `(ctx.range_start, ctx.range_end]`, extrapolated as Prometheus 3 does.
///
/// * Needs two samples; `None` otherwise.
/// * Counters: whenever a value drops, the counter is taken to have restarted from zero, so the
///   value before the drop is added back (a reset to 5 after 10 contributes 10 + 5).
/// * The change between the first and last sample is extrapolated towards each window edge: all
///   the way if the sample is within 1.1 × the average sample spacing of the edge, otherwise by
///   half a spacing (the series is assumed to start or end inside the window).
/// * Counters never extrapolate below zero: the start extrapolation is capped at the point where
///   the counter's line would reach zero (only when the first value is ≥ 0 and it increased).
/// * `rate` divides by the selector range in seconds.
pub fn extrapolated_rate(
    samples: &[(i64, f64)],
    ctx: &RangeCtx,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    let before_resets = samples
        .windows(2)
        .filter(|p| p[1].1 < p[0].1)
        .map(|p| p[0].1);
    extrapolated_rate_after_resets(samples, ctx, is_counter, is_rate, before_resets)
}

/// [`extrapolated_rate`] told the counter resets of the window instead of finding them:
/// `before_resets` yields, oldest first, the value before each drop between two samples of
/// `samples` (used only with `is_counter`). Callers that evaluate many overlapping windows of one
/// series find the drops once per series; the additions happen in the same order, so the result
/// is bit-identical.
pub fn extrapolated_rate_after_resets(
    samples: &[(i64, f64)],
    ctx: &RangeCtx,
    is_counter: bool,
    is_rate: bool,
    before_resets: impl Iterator<Item = f64>,
) -> Option<f64> {
    if samples.len() < 2 {
        return None;
    }
    let (first, last) = (samples[0], samples[samples.len() - 1]);
    let mut change = last.1 - first.1;
    if is_counter {
        for v in before_resets {
            change += v;
        }
    }
    Some(extrapolate(
        change,
        first,
        last,
        samples.len(),
        (ctx.range_start, ctx.range_end),
        is_counter,
        is_rate.then(|| ctx.range_seconds()),
    ))
}

/// The extrapolation of [`extrapolated_rate_after_resets`] from what it needs of a window: the
/// `change` from the `first` to the `last` of its `count` (two or more) samples, counter resets
/// already added back, and the window's `(start, end)`; divided by `range_seconds` for `rate`.
/// Callers computing many windows of one series pass the range in seconds once.
#[inline]
pub(crate) fn extrapolate(
    change: f64,
    (first_t, first_v): (i64, f64),
    (last_t, _): (i64, f64),
    count: usize,
    (range_start, range_end): (i64, i64),
    is_counter: bool,
    range_seconds: Option<f64>,
) -> f64 {
    let result = change;
    let mut to_start = (first_t - range_start) as f64 / 1000.0;
    let mut to_end = (range_end - last_t) as f64 / 1000.0;
    let sampled_interval = (last_t - first_t) as f64 / 1000.0;
    // Through i64: one instruction where a usize conversion takes several (the count is far below
    // 2^53, so the value is the same).
    let average_spacing = sampled_interval / (count - 1) as i64 as f64;
    let threshold = average_spacing * 1.1;

    if to_start >= threshold {
        to_start = average_spacing / 2.0;
    }
    if is_counter {
        // Where the counter's straight line would have been zero, if it went up at all.
        let mut to_zero = to_start;
        if result > 0.0 && first_v >= 0.0 {
            to_zero = sampled_interval * (first_v / result);
        }
        if to_zero < to_start {
            to_start = to_zero;
        }
    }
    if to_end >= threshold {
        to_end = average_spacing / 2.0;
    }

    let mut factor = 1.0;
    if sampled_interval != 0.0 {
        factor = (sampled_interval + to_start + to_end) / sampled_interval;
    }
    if let Some(secs) = range_seconds {
        factor /= secs;
    }
    result * factor
}

/// The experimental range-selector modifiers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Extension {
    /// `anchored`: the samples also cover the lookback delta before `range_start`, so the value in
    /// force at the window start is known.
    Anchored,
    /// `smoothed`: the samples cover the lookback delta on both sides; edge values are
    /// interpolated.
    Smoothed,
}

fn interpolate(p1: (i64, f64), p2: (i64, f64), t: i64, is_counter: bool) -> f64 {
    // A counter that dropped between the two points restarted from zero.
    let y1 = if is_counter && p2.1 < p1.1 { 0.0 } else { p1.1 };
    y1 + (p2.1 - y1) * (t - p1.0) as f64 / (p2.0 - p1.0) as f64
}

/// `rate`/`increase`/`delta` with `anchored` or `smoothed` (Prometheus' `extendedRate`): the
/// difference between the values at the two window edges, no extrapolation, plus what counter
/// resets inside lost. `samples` must include the lookback-delta samples the extension asks for.
///
/// Anchored: the left value is the last sample at or before `range_start` (or the first sample),
/// the right value the last sample. Smoothed: both edge values are interpolated linearly from the
/// neighbouring samples when no sample sits exactly on the edge.
pub fn extended_rate(
    samples: &[(i64, f64)],
    ctx: &RangeCtx,
    extension: Extension,
    is_counter: bool,
    is_rate: bool,
) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let f = samples;
    let smoothed = extension == Extension::Smoothed;
    let mut last = f.len() - 1;
    // Searches run over all but the last sample, as Prometheus' `sort.Search(lastSampleIndex, …)`.
    let mut first = f[..last]
        .partition_point(|p| p.0 <= ctx.range_start)
        .saturating_sub(1);
    if smoothed {
        last = f[..last].partition_point(|p| p.0 < ctx.range_end);
    }
    if f[last].0 <= ctx.range_start {
        return None;
    }
    if smoothed && f[first].0 > ctx.range_end {
        return None;
    }

    let left = if smoothed && f[first].0 < ctx.range_start {
        interpolate(f[first], f[first + 1], ctx.range_start, is_counter)
    } else {
        f[first].1
    };
    let right = if smoothed && last > 0 && f[last].0 > ctx.range_end {
        interpolate(f[last - 1], f[last], ctx.range_end, is_counter)
    } else {
        f[last].1
    };

    let mut result = right - left;
    if is_counter {
        // Samples on or beyond an edge are already represented by `left`/`right`.
        if f[first].0 <= ctx.range_start {
            first += 1;
        }
        let inner_end = if f[last].0 >= ctx.range_end {
            last
        } else {
            last + 1
        };
        let inner = f.get(first..inner_end).unwrap_or(&[]);
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
        result /= ctx.range_seconds();
    }
    Some(result)
}

/// The samples `resets`/`changes` look at under `anchored`: from the last sample at or before
/// `range_start` (the value in force when the window opens) onwards. `None` when no sample lies
/// after `range_start`, i.e. there is nothing to measure.
pub fn anchored_window<'a>(samples: &'a [(i64, f64)], ctx: &RangeCtx) -> Option<&'a [(i64, f64)]> {
    let after = samples.partition_point(|p| p.0 <= ctx.range_start);
    if after >= samples.len() {
        return None;
    }
    Some(&samples[after.saturating_sub(1)..])
}

/// `irate`: the per-second rate between the last two samples; after a counter reset (the last
/// value is lower) the last value itself is the increase. `None` with fewer than two samples or
/// when both share a timestamp.
pub fn irate(samples: &[(i64, f64)]) -> Option<f64> {
    instant_value(samples, true)
}

/// `idelta`: the difference between the last two samples (no reset handling).
pub fn idelta(samples: &[(i64, f64)]) -> Option<f64> {
    instant_value(samples, false)
}

fn instant_value(samples: &[(i64, f64)], is_rate: bool) -> Option<f64> {
    let [.., (t0, v0), (t1, v1)] = *samples else {
        return None;
    };
    let interval = t1 - t0;
    if interval == 0 {
        return None;
    }
    // Only a real drop counts as a reset; with a NaN the difference (NaN) is taken, as in
    // Prometheus.
    let mut result = if is_rate && v1 < v0 { v1 } else { v1 - v0 };
    if is_rate {
        result /= interval as f64 / 1000.0;
    }
    Some(result)
}

/// `resets`: how many times the value dropped between consecutive samples. `None` for an empty
/// window; a single sample gives 0.
pub fn resets(samples: &[(i64, f64)]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    Some(samples.windows(2).filter(|p| p[1].1 < p[0].1).count() as f64)
}

/// `changes`: how many times the value differs from the previous sample; NaN followed by NaN is
/// no change. `None` for an empty window.
pub fn changes(samples: &[(i64, f64)]) -> Option<f64> {
    if samples.is_empty() {
        return None;
    }
    let n = samples
        .windows(2)
        .filter(|p| p[1].1 != p[0].1 && !(p[1].1.is_nan() && p[0].1.is_nan()))
        .count();
    Some(n as f64)
}
