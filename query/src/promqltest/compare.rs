//! Comparing a query's outcome with an eval's expectations, with Prometheus' rules: float
//! tolerance ([`almost_equal`] with [`EPSILON`]), instant vectors as unordered sets unless the
//! eval is ordered, range results series by series on the query's time grid, `_` meaning "no
//! point at this step", annotations and expected failures matched by message or pattern.
//!
//! Owns: the rules and the text rendering of expected and actual values for reports.
//! Does not own: running queries or deciding what to skip (`runner`).

use std::fmt::Write as _;

use ember_index::Labels;

use crate::value::{Sample, Series, Value, is_stale_nan};

use super::script::{AnnotationRule, Eval, Expected, ExpectedSeries, Grid, TextMatch};
use super::series::SeqValue;

/// Prometheus' promqltest `defaultEpsilon`: the relative error allowed between sample values.
pub const EPSILON: f64 = 0.000001;

/// Prometheus' `almost.Equal`: NaN equals NaN (any payload, so the staleness marker too), equal
/// values (including same-signed infinities) are equal, a zero or subnormal side needs an absolute
/// difference below `epsilon * f64::MIN_POSITIVE` — effectively exact — and otherwise the
/// difference relative to the *sum* of magnitudes must be below `epsilon`.
pub fn almost_equal(a: f64, b: f64, epsilon: f64) -> bool {
    if a.is_nan() && b.is_nan() {
        return true;
    }
    if a == b {
        return true;
    }
    let abs_sum = a.abs() + b.abs();
    let diff = (a - b).abs();
    if a == 0.0 || b == 0.0 || abs_sum < f64::MIN_POSITIVE {
        return diff < epsilon * f64::MIN_POSITIVE;
    }
    diff / abs_sum.min(f64::MAX) < epsilon
}

/// Checks an error message against an eval's failure matchers (all must accept it).
pub fn check_failure(matchers: &[TextMatch], message: &str) -> Result<(), String> {
    match matchers.iter().find(|m| !m.matches(message)) {
        Some(m) => Err(format!("expected an error matching {m}, got: {message}")),
        None => Ok(()),
    }
}

/// Checks warnings and infos against `expect warn`/`info`/`no_warn`/`no_info` and the legacy
/// `eval_warn`/`eval_info` (which only require at least one).
pub fn check_annotations(eval: &Eval, warnings: &[String], infos: &[String]) -> Result<(), String> {
    check_kind("warn", &eval.warn, warnings)?;
    check_kind("info", &eval.info, infos)
}

fn check_kind(kind: &str, rule: &AnnotationRule, actual: &[String]) -> Result<(), String> {
    if rule.required && actual.is_empty() {
        return Err(format!("expected {kind} annotations but got none"));
    }
    if !rule.matchers.is_empty() {
        if actual.is_empty() {
            return Err(format!("expected {kind} annotations but none were found"));
        }
        if let Some(m) = rule
            .matchers
            .iter()
            .find(|m| !actual.iter().any(|a| m.matches(a)))
        {
            return Err(format!(
                "expected a {kind} annotation matching {m}, found: {actual:?}"
            ));
        }
        // Once any `expect <kind>` line exists, every annotation of that kind must be expected.
        if let Some(a) = actual
            .iter()
            .find(|a| !rule.matchers.iter().any(|m| m.matches(a)))
        {
            return Err(format!("unexpected {kind} annotation {a:?}"));
        }
    }
    if rule.forbidden && !actual.is_empty() {
        return Err(format!("unexpected {kind} annotations: {actual:?}"));
    }
    Ok(())
}

/// Compares a value with the eval's expected result. `grid` lays out expected range-vector
/// points (a range query's grid, or an instant query's `expect range vector`).
pub fn compare_value(eval: &Eval, grid: Option<Grid>, value: &Value) -> Result<(), String> {
    if let Some(want) = &eval.expected_string {
        return match value {
            Value::String { s, .. } if s == want => Ok(()),
            Value::String { s, .. } => Err(format!("expected string {want:?} but got {s:?}")),
            other => Err(format!("expected string {want:?} but got {}", kind(other))),
        };
    }
    match (value, &eval.expected) {
        (Value::Scalar { v, .. }, Expected::Scalar(want)) => {
            if almost_equal(*want, *v, EPSILON) {
                Ok(())
            } else {
                Err(format!(
                    "expected scalar {} but got {}",
                    fmt_f64(*want),
                    fmt_f64(*v)
                ))
            }
        }
        (Value::Scalar { .. }, Expected::Series(_)) => {
            Err("expected an instant or range vector but got a scalar".to_string())
        }
        (Value::String { s, .. }, _) => {
            // Prometheus compares a string result with the (default empty) `expect string`.
            if s.is_empty() {
                Ok(())
            } else {
                Err(format!(
                    "got string {s:?} but the eval has no `expect string`"
                ))
            }
        }
        (other, Expected::Scalar(_)) => Err(format!("expected a scalar but got {}", kind(other))),
        (Value::Vector(samples), Expected::Series(want)) => compare_vector(eval, want, samples),
        (Value::Matrix(series), Expected::Series(want)) => {
            if eval.ordered {
                return Err("expected an ordered result, but the query returned a matrix".into());
            }
            compare_matrix(want, grid, series)
        }
    }
}

fn compare_vector(eval: &Eval, want: &[ExpectedSeries], got: &[Sample]) -> Result<(), String> {
    let mut seen = vec![false; want.len()];
    for (pos, s) in got.iter().enumerate() {
        let Some(k) = want.iter().position(|w| w.labels == s.labels) else {
            return Err(format!(
                "unexpected series {} in result, has value {}",
                s.labels,
                fmt_f64(s.v)
            ));
        };
        if seen[k] {
            return Err(format!("series {} appears twice in the result", s.labels));
        }
        seen[k] = true;
        if eval.ordered && k != pos {
            return Err(format!(
                "expected {} at position {} but it was at position {}",
                s.labels,
                k + 1,
                pos + 1
            ));
        }
        match want[k].values.first() {
            Some(SeqValue::Value(v)) if almost_equal(*v, s.v, EPSILON) => {}
            Some(SeqValue::Value(v)) => {
                return Err(format!(
                    "expected {} for {} but got {}",
                    fmt_f64(*v),
                    s.labels,
                    fmt_f64(s.v)
                ));
            }
            _ => {
                return Err(format!(
                    "expected series {} has no float value to compare with",
                    s.labels
                ));
            }
        }
    }
    match want.iter().zip(&seen).find(|(_, seen)| !**seen) {
        Some((w, _)) => Err(format!("expected series {} not found", w.labels)),
        None => Ok(()),
    }
}

fn compare_matrix(
    want: &[ExpectedSeries],
    grid: Option<Grid>,
    got: &[Series],
) -> Result<(), String> {
    check_sorted(got)?;
    let mut seen = vec![false; want.len()];
    for s in got {
        let Some(k) = want.iter().position(|w| w.labels == s.labels) else {
            return Err(format!(
                "unexpected series {} in result, has {}",
                s.labels,
                fmt_points(&s.samples)
            ));
        };
        seen[k] = true;
        let expected = expected_points(&want[k], grid)?;
        if expected.len() != s.samples.len() {
            return Err(format!(
                "expected {} points for {} but got {}: {}",
                expected.len(),
                s.labels,
                s.samples.len(),
                fmt_points(&s.samples)
            ));
        }
        for (i, (&(et, ev), &(t, v))) in expected.iter().zip(&s.samples).enumerate() {
            if et != t {
                return Err(format!(
                    "expected point {i} of {} at t={} but it is at t={}",
                    s.labels,
                    fmt_ms(et),
                    fmt_ms(t)
                ));
            }
            if !almost_equal(ev, v, EPSILON) {
                return Err(format!(
                    "expected {} at t={} for {} but got {}",
                    fmt_f64(ev),
                    fmt_ms(t),
                    s.labels,
                    fmt_f64(v)
                ));
            }
        }
    }
    match want.iter().zip(&seen).find(|(_, seen)| !**seen) {
        Some((w, _)) => Err(format!("expected series {} not found", w.labels)),
        None => Ok(()),
    }
}

/// The expected points of one series: value `i` sits at `start + i * step`; `_` means no point.
fn expected_points(want: &ExpectedSeries, grid: Option<Grid>) -> Result<Vec<(i64, f64)>, String> {
    let mut out = Vec::new();
    for (i, v) in want.values.iter().enumerate() {
        let Some(g) = grid else {
            return Err(format!(
                "the query returned a range vector for {} but the eval has no `expect range vector`",
                want.labels
            ));
        };
        let t = g.start_ms + i as i64 * g.step_ms;
        if t > g.end_ms {
            return Err(format!(
                "expected {} points for {}, but the time range cannot hold that many",
                want.values.len(),
                want.labels
            ));
        }
        match v {
            SeqValue::Value(v) => out.push((t, *v)),
            SeqValue::Omitted => {}
            SeqValue::Histogram => return Err("native histograms are not supported".to_string()),
        }
    }
    Ok(out)
}

/// Range results must come sorted by labels (Prometheus' `labels.Compare`, which is the derived
/// order of [`Labels`]), each label set once.
pub fn check_sorted(series: &[Series]) -> Result<(), String> {
    for w in series.windows(2) {
        if w[0].labels >= w[1].labels {
            return Err(format!(
                "range results must be sorted by labels without duplicates, but {} comes before {}",
                w[0].labels, w[1].labels
            ));
        }
    }
    Ok(())
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Scalar { .. } => "a scalar",
        Value::String { .. } => "a string",
        Value::Vector(_) => "an instant vector",
        Value::Matrix(_) => "a range vector",
    }
}

/// A float as Prometheus prints it in test output: `+Inf`, `-Inf`, `NaN`; the staleness marker is
/// called out because it should never reach a query result.
pub fn fmt_f64(v: f64) -> String {
    if is_stale_nan(v) {
        "NaN(stale marker)".to_string()
    } else if v.is_nan() {
        "NaN".to_string()
    } else if v.is_infinite() {
        if v > 0.0 { "+Inf" } else { "-Inf" }.to_string()
    } else if v != 0.0 && (v.abs() >= 1e21 || v.abs() < 1e-6) {
        format!("{v:e}")
    } else {
        format!("{v}")
    }
}

/// Milliseconds as a Prometheus duration (`1m30s`, `10s53ms`, `-1m`).
pub fn fmt_ms(ms: i64) -> String {
    if ms == 0 {
        return "0s".to_string();
    }
    let mut out = String::new();
    if ms < 0 {
        out.push('-');
    }
    let mut rest = ms.unsigned_abs();
    for (unit, size) in [("h", 3_600_000u64), ("m", 60_000), ("s", 1_000), ("ms", 1)] {
        if rest >= size {
            let _ = write!(out, "{}{unit}", rest / size);
            rest %= size;
        }
    }
    out
}

fn fmt_points(points: &[(i64, f64)]) -> String {
    if points.is_empty() {
        return "no points".to_string();
    }
    let parts: Vec<String> = points
        .iter()
        .map(|&(t, v)| format!("{}@{}", fmt_f64(v), fmt_ms(t)))
        .collect();
    parts.join(" ")
}

/// A query's value, one line per series, for failure reports.
pub fn render_value(value: &Value) -> String {
    match value {
        Value::Scalar { v, .. } => format!("scalar {}", fmt_f64(*v)),
        Value::String { s, .. } => format!("string {s:?}"),
        Value::Vector(samples) if samples.is_empty() => "empty instant vector".to_string(),
        Value::Vector(samples) => lines(samples.iter().map(|s| (&s.labels, fmt_f64(s.v)))),
        Value::Matrix(series) if series.is_empty() => "empty range vector".to_string(),
        Value::Matrix(series) => lines(series.iter().map(|s| (&s.labels, fmt_points(&s.samples)))),
    }
}

/// What an eval expects, in the same shape as [`render_value`].
pub fn render_expected(eval: &Eval, grid: Option<Grid>) -> String {
    if let Some(fail) = &eval.fail {
        let conds: Vec<String> = fail.iter().map(|m| m.to_string()).collect();
        return match conds.is_empty() {
            true => "a query error".to_string(),
            false => format!("a query error matching {}", conds.join(" and ")),
        };
    }
    if let Some(s) = &eval.expected_string {
        return format!("string {s:?}");
    }
    match &eval.expected {
        Expected::Scalar(v) => format!("scalar {}", fmt_f64(*v)),
        Expected::Series(want) if want.is_empty() => "empty result".to_string(),
        Expected::Series(want) => lines(want.iter().map(|w| {
            let vals: Vec<String> = w
                .values
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let v = match v {
                        SeqValue::Value(v) => fmt_f64(*v),
                        SeqValue::Omitted => "_".to_string(),
                        SeqValue::Histogram => "{{…}}".to_string(),
                    };
                    match grid {
                        Some(g) => format!("{v}@{}", fmt_ms(g.start_ms + i as i64 * g.step_ms)),
                        None => v,
                    }
                })
                .collect();
            (&w.labels, vals.join(" "))
        })),
    }
}

fn lines<'a>(rows: impl Iterator<Item = (&'a Labels, String)>) -> String {
    let rows: Vec<String> = rows.map(|(l, v)| format!("{l} {v}")).collect();
    rows.join("\n")
}

#[cfg(test)]
#[path = "compare_tests.rs"]
mod tests;
