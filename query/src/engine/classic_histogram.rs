//! The functions over classic histograms: `histogram_quantile`, `histogram_quantiles` and
//! `histogram_fraction` applied to `le` bucket series.
//!
//! Owns the evaluator's side of these functions (Prometheus' `resetHistograms` and the
//! `funcHistogram*` functions): grouping the bucket series of a step into histograms by all
//! labels but `le`, the bad-`le` warning, the invalid-quantile warning and the monotonicity info,
//! the `quantile` label of `histogram_quantiles`, and the output series. The math on one
//! histogram's buckets belongs to `crate::functions::histogram`. Native histograms are not stored
//! by Ember, so the native branch of these functions never has anything to act on.

use std::collections::HashMap;

use ember_index::{Label, Labels};

use super::QueryError;
use super::eval::{Evaluator, Val, duplicate_labelset, merge_same_labelsets};
use super::plan::{Call, Node};
use super::types::StepSeries;
use crate::functions::annotations::invalid_quantile;
use crate::functions::gofmt::format_openmetrics_float;
use crate::functions::histogram::{
    Bucket, bad_bucket_label, bucket_fraction, bucket_quantile, parse_le,
};

/// The series of a bucket vector grouped into classic histograms: the series that share all
/// labels but `le` are the buckets of one histogram.
struct BucketGroups {
    /// Each histogram's labels (`le` removed), in order of first appearance.
    labels: Vec<Labels>,
    /// Per input series: its histogram and bucket bound, `None` when its `le` is unusable.
    member: Vec<Option<(usize, f64)>>,
}

impl Evaluator<'_> {
    /// Groups bucket series into histograms, warning (at `arg`'s position) about every series
    /// whose `le` label is missing or not a number; such series take no part.
    fn group_buckets(&self, input: &[StepSeries], arg: &Node) -> BucketGroups {
        let mut index: HashMap<Labels, usize> = HashMap::new();
        let mut labels: Vec<Labels> = Vec::new();
        let mut member = Vec::with_capacity(input.len());
        for s in input {
            let le = s.labels.get("le");
            let Some(upper) = parse_le(le) else {
                // Prometheus names the metric only when it still has it (delayed removal).
                let name = s.labels.metric_name().filter(|_| self.delayed());
                self.annotate(bad_bucket_label(le, name), Some(arg));
                member.push(None);
                continue;
            };
            let key = s.labels.without(&["le"]);
            let next = labels.len();
            let h = *index.entry(key.clone()).or_insert_with(|| {
                labels.push(key);
                next
            });
            member.push(Some((h, upper)));
        }
        BucketGroups { labels, member }
    }

    /// Calls `f(step, ts, histogram, buckets)` for every histogram with at least one bucket at
    /// each step.
    fn for_each_histogram(
        &self,
        input: &[StepSeries],
        groups: &BucketGroups,
        mut f: impl FnMut(usize, i64, usize, &[Bucket]) -> Result<(), QueryError>,
    ) -> Result<(), QueryError> {
        let mut per_hist: Vec<Vec<Bucket>> = vec![Vec::new(); groups.labels.len()];
        let mut cursors = vec![0usize; input.len()];
        for (step, ts) in self.steps.iter().enumerate() {
            self.ctx.check()?;
            per_hist.iter_mut().for_each(Vec::clear);
            for (si, s) in input.iter().enumerate() {
                if let Some(&(t, v)) = s.points.get(cursors[si])
                    && t == ts
                {
                    cursors[si] += 1;
                    if let Some((h, upper)) = groups.member[si] {
                        per_hist[h].push(Bucket {
                            upper_bound: upper,
                            count: v,
                        });
                    }
                }
            }
            for (h, buckets) in per_hist.iter().enumerate() {
                if !buckets.is_empty() {
                    f(step, ts, h, buckets)?;
                }
            }
        }
        Ok(())
    }

    /// An empty output series for a histogram: its labels, the metric name dropped.
    fn histogram_output(&self, labels: Labels) -> StepSeries {
        let mut s = StepSeries {
            labels,
            drop_name: false,
            points: Vec::new(),
        };
        self.drop_name(&mut s.labels, &mut s.drop_name);
        s
    }

    /// The output series with points, merged where names were dropped, and the held-sample count
    /// reset to what it was before the call plus the output.
    fn finish_histogram_call(
        &self,
        before: usize,
        mut out: Vec<StepSeries>,
    ) -> Result<Val, QueryError> {
        out.retain(|s| !s.points.is_empty());
        if !self.delayed() {
            out = merge_same_labelsets(out)?;
        }
        let total: usize = out.iter().map(|s| s.points.len()).sum();
        self.ctx.set(before + total)?;
        Ok(Val::Vector(out))
    }

    /// Quantile `q` of one histogram's buckets, raising the monotonicity info (at `arg`) when
    /// counts had to be fixed.
    fn classic_quantile(
        &self,
        q: f64,
        buckets: &[Bucket],
        labels: &Labels,
        ts: i64,
        arg: &Node,
    ) -> f64 {
        // Each quantile works on its own copy: the fix-ups reorder and rewrite the buckets.
        let mut buckets = buckets.to_vec();
        let r = bucket_quantile(q, &mut buckets);
        let name = labels.metric_name().filter(|_| self.delayed());
        if let Some(info) = r.annotation(name, ts) {
            self.annotate(info, Some(arg));
        }
        r.value
    }

    /// `histogram_quantile(q, buckets)`: one output series per histogram.
    pub(crate) fn eval_histogram_quantile(&self, c: &Call) -> Result<Val, QueryError> {
        let before = self.ctx.current();
        let q = self.eval(&c.args[0])?.into_scalar();
        let input = self.eval(&c.args[1])?.into_series();
        for &qv in &q {
            if let Some(w) = invalid_quantile(qv) {
                self.annotate(w, Some(&c.args[0]));
            }
        }
        let groups = self.group_buckets(&input, &c.args[1]);
        let mut out: Vec<StepSeries> = groups
            .labels
            .iter()
            .map(|l| self.histogram_output(l.clone()))
            .collect();
        self.for_each_histogram(&input, &groups, |step, ts, h, buckets| {
            let v = self.classic_quantile(q[step], buckets, &groups.labels[h], ts, &c.args[1]);
            out[h].points.push((ts, v));
            Ok(())
        })?;
        self.finish_histogram_call(before, out)
    }

    /// `histogram_quantiles(buckets, "label", q1, q2, …)`: for every quantile, one output series
    /// per histogram, told apart by `label` set to the quantile (`labels.FormatOpenMetricsFloat`:
    /// `0.5`, `1.0`, `NaN`).
    pub(crate) fn eval_histogram_quantiles(&self, c: &Call) -> Result<Val, QueryError> {
        let before = self.ctx.current();
        let label = match c.args.get(1) {
            Some(Node::Str { s, .. }) => s.clone(),
            _ => String::new(),
        };
        let input = self.eval(&c.args[0])?.into_series();
        let qs: Vec<Vec<f64>> = c.args[2..]
            .iter()
            .map(|a| self.eval(a).map(Val::into_scalar))
            .collect::<Result<_, _>>()?;
        for (q, arg) in qs.iter().zip(&c.args[2..]) {
            for &qv in q {
                if let Some(w) = invalid_quantile(qv) {
                    self.annotate(w, Some(arg));
                }
            }
        }
        let groups = self.group_buckets(&input, &c.args[0]);
        // Output series by their labels. A quantile given twice (or `0` and `-0`, both "0.0")
        // yields one label set twice at a step: the duplicate-labelset error, as in Prometheus.
        let mut index: HashMap<Labels, usize> = HashMap::new();
        // The output series of a histogram and quantile, by the quantile's bits.
        let mut cache: HashMap<(usize, u64), usize> = HashMap::new();
        let mut out: Vec<StepSeries> = Vec::new();
        self.for_each_histogram(&input, &groups, |step, ts, h, buckets| {
            for q in &qs {
                let q = q[step];
                let v = self.classic_quantile(q, buckets, &groups.labels[h], ts, &c.args[0]);
                let i = match cache.get(&(h, q.to_bits())) {
                    Some(&i) => i,
                    None => {
                        // The name goes first, then the quantile label is set (even `__name__`).
                        let mut series = self.histogram_output(groups.labels[h].clone());
                        let value = format_openmetrics_float(q);
                        series.labels = with_label(&series.labels, &label, &value)?;
                        let i = *index.entry(series.labels.clone()).or_insert_with(|| {
                            out.push(series);
                            out.len() - 1
                        });
                        cache.insert((h, q.to_bits()), i);
                        i
                    }
                };
                if out[i].points.last().is_some_and(|p| p.0 == ts) {
                    return Err(duplicate_labelset());
                }
                out[i].points.push((ts, v));
            }
            Ok(())
        })?;
        self.finish_histogram_call(before, out)
    }

    /// `histogram_fraction(lower, upper, buckets)`: the estimated share of observations between
    /// the bounds, one output series per histogram.
    pub(crate) fn eval_histogram_fraction(&self, c: &Call) -> Result<Val, QueryError> {
        let before = self.ctx.current();
        let lower = self.eval(&c.args[0])?.into_scalar();
        let upper = self.eval(&c.args[1])?.into_scalar();
        let input = self.eval(&c.args[2])?.into_series();
        let groups = self.group_buckets(&input, &c.args[2]);
        let mut out: Vec<StepSeries> = groups
            .labels
            .iter()
            .map(|l| self.histogram_output(l.clone()))
            .collect();
        self.for_each_histogram(&input, &groups, |step, ts, h, buckets| {
            let mut buckets = buckets.to_vec();
            let v = bucket_fraction(lower[step], upper[step], &mut buckets);
            out[h].points.push((ts, v));
            Ok(())
        })?;
        self.finish_histogram_call(before, out)
    }
}

/// `labels` with `name` set to `value` (replacing any previous value). Prometheus would even set
/// a label with an empty name; Ember's label sets cannot hold one, so that is an error here.
fn with_label(labels: &Labels, name: &str, value: &str) -> Result<Labels, QueryError> {
    let mut v: Vec<Label> = labels.iter().filter(|l| l.name != name).cloned().collect();
    v.push(Label::new(name, value));
    Labels::new(v).map_err(|e| QueryError::Execution(format!("histogram_quantiles: {e}")))
}
