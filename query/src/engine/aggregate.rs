//! Aggregation operators over all steps: `sum`, `avg`, `count`, `min`, `max`, `group`, `stddev`,
//! `stdvar`, `quantile`, `topk`, `bottomk`, `limitk`, `limit_ratio`, `count_values`, with `by`/`without`.
//!
//! Owns grouping (each input series is mapped to its group once, not per step), the per-step
//! accumulation with Prometheus' numerics (Kahan–Neumaier sums, the avg fallback to an incremental mean
//! on overflow, Welford variance, NaN handling in min/max and topk), the k-selection heaps (so ties and
//! NaNs are kept or evicted as Prometheus' heaps do), the parameter checks and their errors/warnings,
//! and the output shape (one series per group; topk and friends keep input labels; an instant query's
//! topk/bottomk output is sorted). It does not own evaluating the operand or the parameter (the
//! evaluator passes them in, already evaluated over the steps).

use std::collections::HashMap;

use ember_index::{Label, Labels};

use super::QueryError;
use super::eval::{Evaluator, Val};
use super::fallback::{kahan_inc, quantile};
use super::hash::prometheus_hash;
use super::limits::QueryCtx;
use super::plan::{Aggregate, Node};
use super::types::go_quote;
use super::types::{METRIC_NAME, StepSeries, Steps, labels_from};

/// The aggregation operators, independent of how the parser spells them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum AggOp {
    Sum,
    Avg,
    Count,
    Min,
    Max,
    Group,
    Stddev,
    Stdvar,
    Quantile,
    Topk,
    Bottomk,
    Limitk,
    LimitRatio,
    CountValues,
}

/// An aggregation to run: operator, grouping, and where to report parameter warnings.
pub(crate) struct AggSpec<'a> {
    pub op: AggOp,
    pub without: bool,
    /// Grouping label names (any order).
    pub grouping: &'a [String],
    /// " (line:col)" of the parameter, appended to its warnings.
    pub param_pos: String,
    pub delayed_name_removal: bool,
}

impl AggSpec<'_> {
    /// Labels of the group `l` belongs to (also its key).
    fn group_labels(&self, l: &Labels) -> Labels {
        let names: Vec<&str> = self.grouping.iter().map(String::as_str).collect();
        if self.without {
            let mut all = names;
            all.push(METRIC_NAME);
            l.without(&all)
        } else if names.is_empty() {
            Labels::empty()
        } else {
            l.keep_only(&names)
        }
    }
}

impl Evaluator<'_> {
    pub(crate) fn eval_aggregate(&self, a: &Aggregate) -> Result<Val, QueryError> {
        let before = self.ctx.current();
        let spec = AggSpec {
            op: a.op,
            without: a.without,
            grouping: &a.grouping,
            param_pos: self.pos(a.param.as_ref().and_then(Node::pos)),
            delayed_name_removal: self.delayed(),
        };
        let out = if a.op == AggOp::CountValues {
            let label = match &a.param {
                Some(Node::Str(s)) => s.clone(),
                _ => String::new(),
            };
            if label.is_empty() {
                return Err(QueryError::Execution(format!(
                    "invalid label name {}",
                    go_quote(&label)
                )));
            }
            let input = self.eval(&a.expr)?.into_series();
            count_values(self.ctx, &self.steps, &spec, &label, input)?
        } else {
            let params = match &a.param {
                Some(p) => Some(self.eval(p)?.into_scalar()),
                None => None,
            };
            let input = self.eval(&a.expr)?.into_series();
            aggregate(self.ctx, &self.steps, &spec, input, params.as_deref())?
        };
        let total: usize = out.iter().map(|s| s.points.len()).sum();
        self.ctx.set(before + total)?;
        Ok(Val::Vector(out))
    }
}

/// Moves through one input series step by step.
struct Cursor {
    next: usize,
}

impl Cursor {
    /// The series' value at step `ts`, if it has one.
    fn take(&mut self, s: &StepSeries, ts: i64) -> Option<f64> {
        match s.points.get(self.next) {
            Some(&(t, v)) if t == ts => {
                self.next += 1;
                Some(v)
            }
            _ => None,
        }
    }
}

#[derive(Clone, Default)]
struct Group {
    seen: bool,
    value: f64,
    mean: f64,
    kahan_c: f64,
    count: f64,
    incremental_mean: bool,
    drop_name: bool,
    values: Vec<f64>,
}

/// Runs a value aggregation (`sum` … `quantile`) or a k-selection over the steps. `params` holds the
/// parameter's value at each step (k, q or r), when the operator takes one.
pub(crate) fn aggregate(
    ctx: &QueryCtx,
    steps: &Steps,
    spec: &AggSpec<'_>,
    input: Vec<StepSeries>,
    params: Option<&[f64]>,
) -> Result<Vec<StepSeries>, QueryError> {
    let param_at = |i: usize| params.map_or(f64::NAN, |p| p[i]);
    check_params(ctx, spec, params)?;

    // Map every input series to its group once.
    let mut group_index: HashMap<Labels, usize> = HashMap::new();
    let mut group_labels: Vec<Labels> = Vec::new();
    let series_group: Vec<usize> = input
        .iter()
        .map(|s| {
            let key = spec.group_labels(&s.labels);
            let next = group_labels.len();
            *group_index.entry(key.clone()).or_insert_with(|| {
                group_labels.push(key);
                next
            })
        })
        .collect();

    match spec.op {
        AggOp::Topk | AggOp::Bottomk | AggOp::Limitk | AggOp::LimitRatio => {
            if matches!(spec.op, AggOp::LimitRatio) {
                let all_zero = params.is_some_and(|p| p.iter().all(|&r| r == 0.0));
                if all_zero {
                    return Ok(Vec::new());
                }
            } else if params.is_some_and(|p| p.iter().all(|&k| k < 1.0)) {
                return Ok(Vec::new());
            }
            select_k(
                ctx,
                steps,
                spec,
                &input,
                &series_group,
                group_labels.len(),
                param_at,
            )
        }
        AggOp::CountValues => unreachable!("count_values has its own entry point"),
        _ => {
            let mut out: Vec<StepSeries> = group_labels
                .into_iter()
                .map(|labels| StepSeries {
                    labels,
                    drop_name: false,
                    points: Vec::new(),
                })
                .collect();
            let mut groups = vec![Group::default(); out.len()];
            let mut cursors: Vec<Cursor> = input.iter().map(|_| Cursor { next: 0 }).collect();
            for (step, ts) in steps.iter().enumerate() {
                ctx.check()?;
                groups.iter_mut().for_each(|g| g.seen = false);
                for (si, s) in input.iter().enumerate() {
                    let Some(v) = cursors[si].take(s, ts) else {
                        continue;
                    };
                    accumulate(spec.op, &mut groups[series_group[si]], v, s.drop_name);
                }
                for (gi, g) in groups.iter().enumerate() {
                    if !g.seen {
                        continue;
                    }
                    let v = finish(spec.op, g, param_at(step));
                    out[gi].points.push((ts, v));
                    out[gi].drop_name = g.drop_name;
                }
            }
            out.retain(|s| !s.points.is_empty());
            Ok(out)
        }
    }
}

/// Prometheus' checks of the parameter over all steps, before any work.
fn check_params(
    ctx: &QueryCtx,
    spec: &AggSpec<'_>,
    params: Option<&[f64]>,
) -> Result<(), QueryError> {
    let Some(p) = params else { return Ok(()) };
    let any_nan = p.iter().any(|v| v.is_nan());
    // Go's math.Max/Min propagate NaN, so one NaN makes both bounds NaN there.
    let (max, min) = if any_nan {
        (f64::NAN, f64::NAN)
    } else {
        (
            p.iter().copied().fold(-f64::MAX, f64::max),
            p.iter().copied().fold(f64::MAX, f64::min),
        )
    };
    match spec.op {
        AggOp::Topk | AggOp::Bottomk | AggOp::Limitk => {
            if max < 1.0 {
                return Ok(());
            }
            if any_nan {
                return Err(QueryError::Execution("Parameter value is NaN".into()));
            }
            if min <= i64::MIN as f64 {
                return Err(QueryError::Execution(format!(
                    "Scalar value {} underflows int64",
                    go_float(min)
                )));
            }
            if max >= i64::MAX as f64 {
                return Err(QueryError::Execution(format!(
                    "Scalar value {} overflows int64",
                    go_float(max)
                )));
            }
        }
        AggOp::LimitRatio => {
            if max == 0.0 && min == 0.0 {
                return Ok(());
            }
            if any_nan {
                return Err(QueryError::Execution("Ratio value is NaN".into()));
            }
            if max > 1.0 {
                ctx.warn(format!(
                    "PromQL warning: ratio value should be between -1 and 1, got {}, capping to 1{}",
                    go_float(max),
                    spec.param_pos
                ));
            }
            if min < -1.0 {
                ctx.warn(format!(
                    "PromQL warning: ratio value should be between -1 and 1, got {}, capping to -1{}",
                    go_float(min),
                    spec.param_pos
                ));
            }
        }
        AggOp::Quantile => {
            let warn = |q: f64| {
                ctx.warn(format!(
                    "PromQL warning: quantile value should be between 0 and 1, got {}{}",
                    go_float(q),
                    spec.param_pos
                ))
            };
            if any_nan {
                warn(f64::NAN);
            }
            if max > 1.0 {
                warn(max);
            }
            if min < 0.0 {
                warn(min);
            }
        }
        _ => {}
    }
    Ok(())
}

/// Go's `%g`/`%v` for a float in annotation text.
pub(crate) fn go_float(v: f64) -> String {
    super::fallback::format_go_float(v)
}

fn accumulate(op: AggOp, g: &mut Group, f: f64, drop_name: bool) {
    if !g.seen {
        *g = Group {
            seen: true,
            value: f,
            mean: f,
            count: 1.0,
            drop_name,
            values: std::mem::take(&mut g.values),
            ..Group::default()
        };
        match op {
            AggOp::Stddev | AggOp::Stdvar => {
                g.value = if f.is_nan() || f.is_infinite() {
                    f64::NAN
                } else {
                    0.0
                };
            }
            AggOp::Quantile => {
                g.values.clear();
                g.values.push(f);
            }
            AggOp::Group => g.value = 1.0,
            _ => {}
        }
        return;
    }
    g.drop_name |= drop_name;
    match op {
        AggOp::Sum => (g.value, g.kahan_c) = kahan_inc(f, g.value, g.kahan_c),
        AggOp::Avg => {
            g.count += 1.0;
            if !g.incremental_mean {
                let (v, c) = kahan_inc(f, g.value, g.kahan_c);
                if !v.is_infinite() {
                    (g.value, g.kahan_c) = (v, c);
                    return;
                }
                // The running sum would overflow: continue with an incremental mean.
                g.incremental_mean = true;
                g.mean = g.value / (g.count - 1.0);
                g.kahan_c /= g.count - 1.0;
            }
            let q = (g.count - 1.0) / g.count;
            (g.mean, g.kahan_c) = kahan_inc(f / g.count, q * g.mean, q * g.kahan_c);
        }
        AggOp::Group => {}
        AggOp::Max => {
            if g.value < f || g.value.is_nan() {
                g.value = f;
            }
        }
        AggOp::Min => {
            if g.value > f || g.value.is_nan() {
                g.value = f;
            }
        }
        AggOp::Count => g.count += 1.0,
        AggOp::Stddev | AggOp::Stdvar => {
            g.count += 1.0;
            let delta = f - g.mean;
            g.mean += delta / g.count;
            g.value += delta * (f - g.mean);
        }
        AggOp::Quantile => g.values.push(f),
        AggOp::Topk | AggOp::Bottomk | AggOp::Limitk | AggOp::LimitRatio | AggOp::CountValues => {
            unreachable!("not a value aggregation")
        }
    }
}

fn finish(op: AggOp, g: &Group, q: f64) -> f64 {
    match op {
        AggOp::Avg if g.incremental_mean => g.mean + g.kahan_c,
        AggOp::Avg => g.value / g.count + g.kahan_c / g.count,
        AggOp::Count => g.count,
        AggOp::Stdvar => g.value / g.count,
        AggOp::Stddev => (g.value / g.count).sqrt(),
        AggOp::Quantile => {
            let mut v = g.values.clone();
            quantile(q, &mut v)
        }
        AggOp::Sum => g.value + g.kahan_c,
        _ => g.value,
    }
}

/// One element held by a k-selection heap.
#[derive(Clone)]
struct Held {
    series: usize,
    v: f64,
}

/// Go's `container/heap` over `less`, so the same elements survive as in Prometheus when values tie.
struct KHeap {
    items: Vec<Held>,
    /// `topk` keeps the smallest on top (`a < b`, NaN smallest); `bottomk` the largest.
    reverse: bool,
}

impl KHeap {
    fn less(&self, i: usize, j: usize) -> bool {
        let (a, b) = (self.items[i].v, self.items[j].v);
        if a.is_nan() {
            return true;
        }
        if self.reverse { a > b } else { a < b }
    }

    fn up(&mut self, mut j: usize) {
        while j > 0 {
            let i = (j - 1) / 2;
            if !self.less(j, i) {
                break;
            }
            self.items.swap(i, j);
            j = i;
        }
    }

    fn down(&mut self, i0: usize) -> bool {
        let n = self.items.len();
        let mut i = i0;
        loop {
            let j1 = 2 * i + 1;
            if j1 >= n {
                break;
            }
            let mut j = j1;
            if j1 + 1 < n && self.less(j1 + 1, j1) {
                j = j1 + 1;
            }
            if !self.less(j, i) {
                break;
            }
            self.items.swap(i, j);
            i = j;
        }
        i > i0
    }

    fn push(&mut self, h: Held) {
        self.items.push(h);
        let n = self.items.len() - 1;
        self.up(n);
    }

    fn replace_top(&mut self, h: Held) {
        self.items[0] = h;
        if !self.down(0) {
            self.up(0);
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn select_k(
    ctx: &QueryCtx,
    steps: &Steps,
    spec: &AggSpec<'_>,
    input: &[StepSeries],
    series_group: &[usize],
    num_groups: usize,
    param_at: impl Fn(usize) -> f64,
) -> Result<Vec<StepSeries>, QueryError> {
    let op = spec.op;
    let instant = steps.is_instant();
    let mut cursors: Vec<Cursor> = input.iter().map(|_| Cursor { next: 0 }).collect();
    // Range query: output series by input series index, in first-output order.
    let mut by_series: HashMap<usize, usize> = HashMap::new();
    let mut out: Vec<StepSeries> = Vec::new();
    let mut heaps: Vec<Option<KHeap>> = (0..num_groups).map(|_| None).collect();
    // Sampling offset of each series for limit_ratio, computed once.
    let offsets: Vec<f64> = if op == AggOp::LimitRatio {
        input
            .iter()
            .map(|s| prometheus_hash(&s.labels) as f64 / u64::MAX as f64)
            .collect()
    } else {
        Vec::new()
    };
    for (step, ts) in steps.iter().enumerate() {
        ctx.check()?;
        let param = param_at(step);
        heaps.iter_mut().for_each(|h| *h = None);
        let k = (param as i64).min(input.len() as i64);
        let ratio = param.clamp(-1.0, 1.0);
        let skip_step = match op {
            AggOp::LimitRatio => param == 0.0,
            _ => k < 1,
        };
        for (si, s) in input.iter().enumerate() {
            // Consume the value even when the step yields nothing, so later steps line up.
            let Some(v) = cursors[si].take(s, ts) else {
                continue;
            };
            if skip_step {
                continue;
            }
            let held = Held { series: si, v };
            let slot = &mut heaps[series_group[si]];
            let heap = slot.get_or_insert_with(|| KHeap {
                items: Vec::new(),
                reverse: op == AggOp::Bottomk,
            });
            match op {
                AggOp::Topk | AggOp::Bottomk => {
                    if (heap.items.len() as i64) < k {
                        heap.push(held);
                    } else {
                        let top = heap.items[0].v;
                        let better = if op == AggOp::Topk { top < v } else { top > v };
                        if better || (top.is_nan() && !v.is_nan()) {
                            if k > 1 {
                                heap.replace_top(held);
                            } else {
                                heap.items[0] = held;
                            }
                        }
                    }
                }
                AggOp::Limitk => {
                    if (heap.items.len() as i64) < k {
                        heap.items.push(held);
                    }
                }
                _ => {
                    let off = offsets[si];
                    let keep = (ratio >= 0.0 && off < ratio) || (ratio < 0.0 && off >= 1.0 + ratio);
                    if keep {
                        heap.items.push(held);
                    }
                }
            }
        }
        for heap in heaps.iter_mut().flatten() {
            let mut items = std::mem::take(&mut heap.items);
            match op {
                // Descending for topk, ascending for bottomk, NaN last in both.
                AggOp::Topk => items.sort_by(|a, b| desc_nan_last(a.v, b.v)),
                AggOp::Bottomk => items.sort_by(|a, b| asc_nan_last(a.v, b.v)),
                _ => {}
            }
            for h in items {
                let src = &input[h.series];
                let idx = if instant {
                    None
                } else {
                    by_series.get(&h.series).copied()
                };
                match idx {
                    Some(i) => out[i].points.push((ts, h.v)),
                    None => {
                        by_series.insert(h.series, out.len());
                        out.push(StepSeries {
                            labels: src.labels.clone(),
                            drop_name: src.drop_name,
                            points: vec![(ts, h.v)],
                        });
                    }
                }
            }
        }
    }
    Ok(out)
}

fn desc_nan_last(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => b.partial_cmp(&a).expect("not NaN"),
    }
}

fn asc_nan_last(a: f64, b: f64) -> std::cmp::Ordering {
    match (a.is_nan(), b.is_nan()) {
        (true, true) => std::cmp::Ordering::Equal,
        (true, false) => std::cmp::Ordering::Greater,
        (false, true) => std::cmp::Ordering::Less,
        _ => a.partial_cmp(&b).expect("not NaN"),
    }
}

/// `count_values("label", v)`: per step, counts the series of each group sharing one value; the value,
/// formatted as Go's `FormatFloat(v, 'f', -1)`, becomes the label `label`.
pub(crate) fn count_values(
    ctx: &QueryCtx,
    steps: &Steps,
    spec: &AggSpec<'_>,
    value_label: &str,
    input: Vec<StepSeries>,
) -> Result<Vec<StepSeries>, QueryError> {
    let mut grouping: Vec<String> = spec.grouping.to_vec();
    if !spec.without {
        grouping.push(value_label.to_string());
    }
    let inner = AggSpec {
        op: AggOp::Count,
        without: spec.without,
        grouping: &grouping,
        param_pos: String::new(),
        delayed_name_removal: spec.delayed_name_removal,
    };
    let mut cursors: Vec<Cursor> = input.iter().map(|_| Cursor { next: 0 }).collect();
    let mut out: Vec<StepSeries> = Vec::new();
    let mut index: HashMap<Labels, usize> = HashMap::new();
    for ts in steps.iter() {
        ctx.check()?;
        // Groups of this step in first-seen order.
        let mut counts: Vec<(Labels, f64)> = Vec::new();
        let mut at: HashMap<Labels, usize> = HashMap::new();
        for (si, s) in input.iter().enumerate() {
            let Some(v) = cursors[si].take(s, ts) else {
                continue;
            };
            let mut l: Vec<Label> = s
                .labels
                .iter()
                .filter(|l| l.name != value_label)
                .cloned()
                .collect();
            l.push(Label::new(value_label, format_value_label(v)));
            let metric = labels_from(l);
            let key = inner.group_labels(&metric);
            match at.get(&key) {
                Some(&i) => counts[i].1 += 1.0,
                None => {
                    at.insert(key.clone(), counts.len());
                    counts.push((key, 1.0));
                }
            }
        }
        for (labels, n) in counts {
            match index.get(&labels) {
                Some(&i) => out[i].points.push((ts, n)),
                None => {
                    index.insert(labels.clone(), out.len());
                    out.push(StepSeries {
                        labels,
                        drop_name: false,
                        points: vec![(ts, n)],
                    });
                }
            }
        }
    }
    Ok(out)
}

/// Go's `strconv.FormatFloat(v, 'f', -1, 64)`: shortest round-trip digits, never an exponent.
pub(crate) fn format_value_label(v: f64) -> String {
    if v.is_nan() {
        "NaN".into()
    } else if v == f64::INFINITY {
        "+Inf".into()
    } else if v == f64::NEG_INFINITY {
        "-Inf".into()
    } else {
        // Rust's float Display is the shortest round-trip representation without exponent.
        format!("{v}")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn value_label_formatting_matches_go() {
        assert_eq!(format_value_label(1.0), "1");
        assert_eq!(format_value_label(0.1), "0.1");
        assert_eq!(format_value_label(1e21), "1000000000000000000000");
        assert_eq!(format_value_label(1e-7), "0.0000001");
        assert_eq!(format_value_label(f64::INFINITY), "+Inf");
        assert_eq!(format_value_label(f64::NAN), "NaN");
    }
}
