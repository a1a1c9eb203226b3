//! Aggregation operators over all steps: `sum`, `avg`, `count`, `min`, `max`, `group`, `stddev`,
//! `stdvar`, `quantile`, `topk`, `bottomk`, `limitk`, `limit_ratio`, `count_values`, with `by`/`without`.
//!
//! Owns grouping (each input series is mapped to its group once, not per step), stepping through the
//! input series, the parameter checks that fail a query or warn (NaN k, k beyond `i64`, NaN or
//! out-of-range ratio, out-of-range quantile), the labels of the output (one series per group; the
//! k-selections keep their input series; an instant query's topk/bottomk output in rank order), and
//! `__name__` bookkeeping under delayed removal. The per-group numerics (Kahan sums, the avg overflow
//! fallback, Welford variance, NaN rules, Go's heap behaviour for ties) are the function library's
//! (`crate::functions::aggregate`).

use std::collections::HashMap;

use ember_index::{Label, Labels};

use super::QueryError;
use super::eval::{Evaluator, Val};
use super::fold::Fold;
use super::hash::prometheus_hash;
use super::plan::{Aggregate, Node};
use super::range_call::RangeOut;
use super::types::{METRIC_NAME, StepSeries, labels_from};
use crate::functions::Annotation;
use crate::functions::aggregate::{
    self as fagg, Aggregator, Select, Selection, clamp_ratio, k_from_param, limit_ratio_keeps,
    ratio_sample_offset,
};
use crate::functions::gofmt::{format_g, format_value_label, quote};

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

impl AggOp {
    /// The library's accumulator for a value aggregation; `None` for selections and count_values.
    pub(super) fn value_op(self) -> Option<fagg::AggOp> {
        Some(match self {
            AggOp::Sum => fagg::AggOp::Sum,
            AggOp::Avg => fagg::AggOp::Avg,
            AggOp::Count => fagg::AggOp::Count,
            AggOp::Min => fagg::AggOp::Min,
            AggOp::Max => fagg::AggOp::Max,
            AggOp::Group => fagg::AggOp::Group,
            AggOp::Stddev => fagg::AggOp::Stddev,
            AggOp::Stdvar => fagg::AggOp::Stdvar,
            AggOp::Quantile => fagg::AggOp::Quantile,
            _ => return None,
        })
    }
}

/// The labels that identify a series' group (and label its output for value aggregations).
pub(super) fn group_labels(l: &Labels, grouping: &[String], without: bool) -> Labels {
    let names: Vec<&str> = grouping.iter().map(String::as_str).collect();
    if without {
        let mut all = names;
        all.push(METRIC_NAME);
        l.without(&all)
    } else if names.is_empty() {
        Labels::empty()
    } else {
        l.keep_only(&names)
    }
}

/// Groups `input` once: each series' group index, and each group's labels in first-seen order.
/// Series are matched by their grouping labels borrowed in place; a label set is built only for
/// each new group (building one per series was most of the grouping time).
fn group(input: &[StepSeries], grouping: &[String], without: bool) -> (Vec<usize>, Vec<Labels>) {
    let mut names: Vec<&str> = grouping.iter().map(String::as_str).collect();
    if without {
        names.push(METRIC_NAME);
    }
    // `group_labels` keeps exactly these: the named labels (`by`), or all others (`without`).
    let kept = |l: &&Label| names.contains(&l.name.as_str()) != without;
    let mut index: HashMap<Vec<(&str, &str)>, usize> = HashMap::new();
    let mut labels: Vec<Labels> = Vec::new();
    let mut key: Vec<(&str, &str)> = Vec::new();
    let of_series = input
        .iter()
        .map(|s| {
            key.clear();
            key.extend(
                s.labels
                    .iter()
                    .filter(kept)
                    .map(|l| (l.name.as_str(), l.value.as_str())),
            );
            if let Some(&g) = index.get(key.as_slice()) {
                return g;
            }
            let g = labels.len();
            labels.push(group_labels(&s.labels, grouping, without));
            index.insert(key.clone(), g);
            g
        })
        .collect();
    (of_series, labels)
}

/// One group's `sum` at one step, for the most common aggregation: plain cells instead of the
/// general accumulator. Prometheus' sum: the first value taken as it is and the rest added with
/// Kahan–Neumaier compensation.
#[derive(Clone, Copy, Default)]
pub(super) struct SumCell {
    seen: bool,
    sum: f64,
    c: f64,
}

impl SumCell {
    #[inline]
    pub(super) fn add(&mut self, v: f64) {
        if self.seen {
            (self.sum, self.c) = crate::functions::kahan::kahan_inc(v, self.sum, self.c);
        } else {
            *self = SumCell {
                seen: true,
                sum: v,
                c: 0.0,
            };
        }
    }

    pub(super) fn value(&self) -> Option<f64> {
        self.seen.then_some(self.sum + self.c)
    }
}

/// Moves through the input series step by step: at each step, the value of each series that has
/// one.
struct Cursors(Vec<usize>);

impl Cursors {
    fn new(n: usize) -> Cursors {
        Cursors(vec![0; n])
    }

    fn take(&mut self, i: usize, s: &StepSeries, ts: i64) -> Option<f64> {
        match s.points.get(self.0[i]) {
            Some(&(t, v)) if t == ts => {
                self.0[i] += 1;
                Some(v)
            }
            _ => None,
        }
    }
}

impl Evaluator<'_> {
    pub(crate) fn eval_aggregate(&self, a: &Aggregate) -> Result<Val, QueryError> {
        let before = self.ctx.current();
        let out = if a.op == AggOp::CountValues {
            let label = match &a.param {
                Some(Node::Str { s, .. }) => s.clone(),
                _ => String::new(),
            };
            // Prometheus 3 accepts any UTF-8 label name but the empty one.
            if label.is_empty() {
                return Err(QueryError::Execution(format!(
                    "invalid label name {}",
                    quote(&label)
                )));
            }
            let input = self.eval(&a.expr)?.into_series();
            self.count_values(a, &label, input)?
        } else {
            let params = match &a.param {
                Some(p) => Some(self.eval(p)?.into_scalar()),
                None => None,
            };
            let input = match (&params, a.op.value_op()) {
                (None, Some(op)) => match self.eval_for_fold(a, op)? {
                    RangeOut::Folded(out) => {
                        let total: usize = out.iter().map(|s| s.points.len()).sum();
                        self.ctx.set(before + total)?;
                        return Ok(Val::Vector(out));
                    }
                    RangeOut::Unfolded(v) => v.into_series(),
                },
                _ => self.eval(&a.expr)?.into_series(),
            };
            if !self.check_params(a, params.as_deref())? {
                Vec::new()
            } else if let Some(op) = a.op.value_op() {
                self.aggregate_values(a, op, input, params.as_deref())?
            } else {
                self.select(a, input, params.as_deref().unwrap_or(&[]))?
            }
        };
        let total: usize = out.iter().map(|s| s.points.len()).sum();
        self.ctx.set(before + total)?;
        Ok(Val::Vector(out))
    }

    /// The argument of value aggregation `a` (without parameter), offering the aggregation to
    /// fold into it when the argument is a range function over a matrix selector (see `fold`).
    fn eval_for_fold(&self, a: &Aggregate, op: fagg::AggOp) -> Result<RangeOut, QueryError> {
        let n = self.steps.count();
        // What `eval` does before dispatching: an empty grid, or an argument evaluated once for
        // all steps, takes its own path.
        let plain = n > 0 && (n == 1 || !a.expr.is_step_invariant());
        if let (true, Node::Call(c)) = (plain, &a.expr)
            && let Some(mi) = c.args.iter().position(|a| matches!(a, Node::Matrix { .. }))
        {
            self.ctx.check()?;
            let fold = Fold {
                op,
                grouping: &a.grouping,
                without: a.without,
            };
            return self.range_call(c, mi, Some(&fold));
        }
        Ok(RangeOut::Unfolded(self.eval(&a.expr)?))
    }

    /// Prometheus' checks of the parameter over all steps, before any work. `false`: the result
    /// is empty without looking at the input (every k below 1, every ratio 0).
    fn check_params(&self, a: &Aggregate, params: Option<&[f64]>) -> Result<bool, QueryError> {
        let Some(p) = params else { return Ok(true) };
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
        let param = a.param.as_ref();
        match a.op {
            AggOp::Topk | AggOp::Bottomk | AggOp::Limitk => {
                if max < 1.0 {
                    return Ok(false);
                }
                if any_nan {
                    return Err(QueryError::Execution("Parameter value is NaN".into()));
                }
                if min <= i64::MIN as f64 {
                    return Err(QueryError::Execution(format!(
                        "Scalar value {} underflows int64",
                        format_g(min)
                    )));
                }
                if max >= i64::MAX as f64 {
                    return Err(QueryError::Execution(format!(
                        "Scalar value {} overflows int64",
                        format_g(max)
                    )));
                }
            }
            AggOp::LimitRatio => {
                if max == 0.0 && min == 0.0 {
                    return Ok(false);
                }
                if any_nan {
                    return Err(QueryError::Execution("Ratio value is NaN".into()));
                }
                if max > 1.0 {
                    let a = Annotation::InvalidRatio {
                        ratio: max,
                        capped_to: 1.0,
                    };
                    self.annotate(a, param);
                }
                if min < -1.0 {
                    let a = Annotation::InvalidRatio {
                        ratio: min,
                        capped_to: -1.0,
                    };
                    self.annotate(a, param);
                }
            }
            AggOp::Quantile => {
                if any_nan {
                    self.annotate(Annotation::InvalidQuantile { q: f64::NAN }, param);
                }
                if max > 1.0 {
                    self.annotate(Annotation::InvalidQuantile { q: max }, param);
                }
                if min < 0.0 {
                    self.annotate(Annotation::InvalidQuantile { q: min }, param);
                }
            }
            _ => {}
        }
        Ok(true)
    }

    /// `sum` … `quantile`: one output series per group, a point at each step the group had input.
    fn aggregate_values(
        &self,
        a: &Aggregate,
        op: fagg::AggOp,
        input: Vec<StepSeries>,
        params: Option<&[f64]>,
    ) -> Result<Vec<StepSeries>, QueryError> {
        let (of_series, labels) = group(&input, &a.grouping, a.without);
        let mut out: Vec<StepSeries> = labels
            .into_iter()
            .map(|labels| StepSeries {
                labels,
                drop_name: false,
                points: Vec::new(),
            })
            .collect();
        if self.aggregate_by_series(op, &input, &of_series, &mut out, params)? {
            return Ok(out);
        }
        let mut groups: Vec<Aggregator> = (0..out.len()).map(|_| Aggregator::new(op)).collect();
        // Whether any input of the group at this step is to lose its name (delayed removal).
        let mut drop_name = vec![false; out.len()];
        let mut cursors = Cursors::new(input.len());
        for (step, ts) in self.steps.iter().enumerate() {
            self.ctx.check()?;
            groups.iter_mut().for_each(Aggregator::reset);
            drop_name.iter_mut().for_each(|d| *d = false);
            for (si, s) in input.iter().enumerate() {
                if let Some(v) = cursors.take(si, s, ts) {
                    groups[of_series[si]].add(v);
                    drop_name[of_series[si]] |= s.drop_name;
                }
            }
            let param = params.map_or(f64::NAN, |p| p[step]);
            for (gi, g) in groups.iter_mut().enumerate() {
                if let Some(v) = g.result(param) {
                    out[gi].points.push((ts, v));
                    out[gi].drop_name = drop_name[gi];
                }
            }
        }
        out.retain(|s| !s.points.is_empty());
        Ok(out)
    }

    /// [`Self::aggregate_values`] walking the input one series at a time instead of one step at a
    /// time, with an accumulator per group and step: each series' points are read in one pass
    /// instead of probing every series at every step. Every accumulator still receives its values
    /// in series order, so the results are the same bits. `false` (nothing done) when the
    /// accumulators would take too much memory, or when a series' points are not one per step
    /// strictly in step order (never for evaluator output; the step-wise loop handles it).
    fn aggregate_by_series(
        &self,
        op: fagg::AggOp,
        input: &[StepSeries],
        of_series: &[usize],
        out: &mut Vec<StepSeries>,
        params: Option<&[f64]>,
    ) -> Result<bool, QueryError> {
        /// About 72 bytes each: 18 MiB at most, held only while the aggregation runs.
        const MAX_ACCUMULATORS: usize = 1 << 18;
        let steps = self.steps;
        let n = steps.count();
        if op == fagg::AggOp::Quantile || out.len().saturating_mul(n) > MAX_ACCUMULATORS {
            return Ok(false);
        }
        // Each point's accumulator, or `None` if some point is off the step grid or out of order.
        // The grid is walked rather than divided into: a series usually has a point at every step,
        // so the walk takes one step per point, and a division per point was a tenth of the
        // aggregation's time.
        let slots = |s: &StepSeries, base: usize, f: &mut dyn FnMut(usize, f64)| -> bool {
            let mut step = 0usize;
            let mut grid_t = steps.start;
            for &(t, v) in &s.points {
                while grid_t < t {
                    step += 1;
                    grid_t += steps.interval;
                }
                if grid_t != t || step >= n {
                    return false;
                }
                f(base + step, v);
                // The next point must be at a later step.
                step += 1;
                grid_t += steps.interval;
            }
            true
        };
        if op == fagg::AggOp::Sum {
            let mut cells = vec![SumCell::default(); out.len() * n];
            let mut drop_name = vec![false; out.len() * n];
            for (si, s) in input.iter().enumerate() {
                self.ctx.check()?;
                let dn = s.drop_name;
                let ok = slots(s, of_series[si] * n, &mut |k, v| {
                    cells[k].add(v);
                    drop_name[k] |= dn;
                });
                if !ok {
                    return Ok(false);
                }
            }
            for (gi, o) in out.iter_mut().enumerate() {
                for (step, ts) in steps.iter().enumerate() {
                    let k = gi * n + step;
                    if let Some(v) = cells[k].value() {
                        o.points.push((ts, v));
                        o.drop_name = drop_name[k];
                    }
                }
            }
            out.retain(|s| !s.points.is_empty());
            return Ok(true);
        }
        let mut acc: Vec<Aggregator> = (0..out.len() * n).map(|_| Aggregator::new(op)).collect();
        let mut drop_name = vec![false; out.len() * n];
        for (si, s) in input.iter().enumerate() {
            self.ctx.check()?;
            let dn = s.drop_name;
            let ok = slots(s, of_series[si] * n, &mut |k, v| {
                acc[k].add(v);
                drop_name[k] |= dn;
            });
            if !ok {
                return Ok(false);
            }
        }
        for (gi, o) in out.iter_mut().enumerate() {
            for (step, ts) in steps.iter().enumerate() {
                let k = gi * n + step;
                let param = params.map_or(f64::NAN, |p| p[step]);
                if let Some(v) = acc[k].result(param) {
                    o.points.push((ts, v));
                    o.drop_name = drop_name[k];
                }
            }
        }
        out.retain(|s| !s.points.is_empty());
        Ok(true)
    }

    /// `topk`, `bottomk`, `limitk`, `limit_ratio`: the selected input series themselves.
    fn select(
        &self,
        a: &Aggregate,
        input: Vec<StepSeries>,
        params: &[f64],
    ) -> Result<Vec<StepSeries>, QueryError> {
        let (of_series, labels) = group(&input, &a.grouping, a.without);
        let instant = self.steps.is_instant();
        // Sampling offsets for limit_ratio, from Prometheus' label hash, once per series.
        let offsets: Vec<f64> = if a.op == AggOp::LimitRatio {
            input
                .iter()
                .map(|s| ratio_sample_offset(prometheus_hash(&s.labels)))
                .collect()
        } else {
            Vec::new()
        };
        let mut cursors = Cursors::new(input.len());
        // Output series by input series (range queries accumulate; an instant query keeps order).
        let mut by_series: HashMap<usize, usize> = HashMap::new();
        let mut out: Vec<StepSeries> = Vec::new();
        for (step, ts) in self.steps.iter().enumerate() {
            self.ctx.check()?;
            let param = params[step];
            let select = match a.op {
                AggOp::Topk => Select::Topk(k_from_param(param, input.len())),
                AggOp::Bottomk => Select::Bottomk(k_from_param(param, input.len())),
                AggOp::Limitk => Select::Limitk(k_from_param(param, input.len())),
                _ => Select::LimitRatio(clamp_ratio(param)),
            };
            let nothing = match select {
                Select::LimitRatio(r) => r == 0.0,
                Select::Topk(k) | Select::Bottomk(k) | Select::Limitk(k) => k < 1,
            };
            let mut selections: Vec<Option<Selection<usize>>> =
                (0..labels.len()).map(|_| None).collect();
            for (si, s) in input.iter().enumerate() {
                // Take the value even when the step yields nothing, so later steps line up.
                let Some(v) = cursors.take(si, s, ts) else {
                    continue;
                };
                if nothing {
                    continue;
                }
                if let Select::LimitRatio(r) = select
                    && !limit_ratio_keeps(r, offsets[si])
                {
                    continue;
                }
                selections[of_series[si]]
                    .get_or_insert_with(|| Selection::new(select))
                    .offer(v, si);
            }
            for selection in selections.into_iter().flatten() {
                for (v, si) in selection.into_sorted() {
                    let existing = if instant {
                        None
                    } else {
                        by_series.get(&si).copied()
                    };
                    match existing {
                        Some(i) => out[i].points.push((ts, v)),
                        None => {
                            by_series.insert(si, out.len());
                            out.push(StepSeries {
                                labels: input[si].labels.clone(),
                                drop_name: input[si].drop_name,
                                points: vec![(ts, v)],
                            });
                        }
                    }
                }
            }
        }
        Ok(out)
    }

    /// `count_values("label", v)`: per step, how many series of each group share a value; the value
    /// (Go's `FormatFloat(v, 'f', -1)`) becomes label `label`.
    fn count_values(
        &self,
        a: &Aggregate,
        value_label: &str,
        input: Vec<StepSeries>,
    ) -> Result<Vec<StepSeries>, QueryError> {
        let mut grouping = a.grouping.clone();
        if !a.without {
            grouping.push(value_label.to_string());
        }
        let mut cursors = Cursors::new(input.len());
        let mut out: Vec<StepSeries> = Vec::new();
        let mut index: HashMap<Labels, usize> = HashMap::new();
        for ts in self.steps.iter() {
            self.ctx.check()?;
            // This step's groups, in first-seen order.
            let mut counts: Vec<(Labels, f64)> = Vec::new();
            let mut at: HashMap<Labels, usize> = HashMap::new();
            for (si, s) in input.iter().enumerate() {
                let Some(v) = cursors.take(si, s, ts) else {
                    continue;
                };
                let mut l: Vec<Label> = s
                    .labels
                    .iter()
                    .filter(|l| l.name != value_label)
                    .cloned()
                    .collect();
                l.push(Label::new(value_label, format_value_label(v)));
                let key = group_labels(&labels_from(l), &grouping, a.without);
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
}
