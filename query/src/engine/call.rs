//! Function calls: how each PromQL function is fed and what happens to labels around it.
//!
//! Owns the dispatch (range-vector functions go to `range_call`), element-wise instant-vector
//! functions (mapped series by series; `__name__` dropped), and the functions that
//! need the evaluator itself: `time`, `vector`, `scalar`, `timestamp` (sample times of a selector),
//! `absent`/`absent_over_time` (labels derived from equality matchers), `label_replace`/`label_join`,
//! the `sort*` family. Functions over classic histograms live in `classic_histogram`, `info` in
//! `info`. It also raises the annotations tied to calls (sort in a range query). The per-value
//! math comes from the function library (`crate::functions`).

use ember::MatchType;
use ember_index::{Label, Labels};

use super::QueryError;
use super::eval::{Evaluator, Val, merge_same_labelsets};
use super::fallback::natural_less;
use super::plan::{Call, Node, Ty};
use super::selector::{self, InstantCursor};
use super::types::{METRIC_NAME, StepSeries, labels_from};
use crate::functions::Annotation;
use crate::functions::labels::{LabelJoin, LabelReplace};
use crate::functions::{math, time};

impl Evaluator<'_> {
    pub(crate) fn eval_call(&self, c: &Call) -> Result<Val, QueryError> {
        if let Some(mi) = c.args.iter().position(|a| a.ty() == Ty::Matrix) {
            return self.eval_range_call(c, mi);
        }
        let steps = self.steps;
        let name = c.name.as_str();
        match name {
            "time" => Ok(Val::Scalar(steps.iter().map(|t| t as f64 / 1e3).collect())),
            "pi" => Ok(Val::Scalar(vec![std::f64::consts::PI; steps.count()])),
            "vector" => {
                let v = self.eval(&c.args[0])?.into_scalar();
                self.ctx.add(v.len())?;
                Ok(Val::Vector(vec![StepSeries {
                    labels: Labels::empty(),
                    drop_name: false,
                    points: steps.iter().zip(v).collect(),
                }]))
            }
            "scalar" => self.eval_scalar_fn(&c.args[0]),
            "timestamp" => match &c.args[0] {
                Node::Vector(sel) => self.eval_timestamp_of_selector(sel),
                arg => self.map_elementwise(arg, &[], |ts, _, _| Some(ts as f64 / 1e3)),
            },
            "absent" => self.eval_absent(c),
            "label_replace" => self.eval_label_replace(c),
            "label_join" => self.eval_label_join(c),
            "sort" | "sort_desc" | "sort_by_label" | "sort_by_label_desc" => self.eval_sort(c),
            "histogram_quantile" => self.eval_histogram_quantile(c),
            "histogram_quantiles" => self.eval_histogram_quantiles(c),
            "histogram_fraction" => self.eval_histogram_fraction(c),
            "info" => self.eval_info(c),
            // Native-histogram functions: Ember stores floats only, so there is nothing to act on.
            "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev"
            | "histogram_stdvar" => {
                for a in &c.args {
                    self.eval(a)?;
                }
                Ok(Val::Vector(Vec::new()))
            }
            "max_of" | "min_of" => {
                let a = self.eval(&c.args[0])?.into_scalar();
                let b = self.eval(&c.args[1])?.into_scalar();
                let f = if name == "max_of" {
                    math::max_of
                } else {
                    math::min_of
                };
                Ok(Val::Scalar(
                    a.into_iter().zip(b).map(|(a, b)| f(a, b)).collect(),
                ))
            }
            _ => {
                if let Some(f) = time::by_name(name) {
                    return match c.args.first() {
                        Some(arg) => self.map_elementwise(arg, &[], move |_, v, _| Some(f(v))),
                        None => self.date_of_steps(f),
                    };
                }
                if let Some(f) = math::by_name(name) {
                    return self.map_elementwise(&c.args[0], &[], move |_, v, _| Some(f(v)));
                }
                let f = elementwise(name).ok_or_else(|| {
                    QueryError::Execution(format!("function \"{name}\" is not supported"))
                })?;
                self.map_elementwise(&c.args[0], &c.args[1..], move |_, v, a| f(v, a))
            }
        }
    }

    /// A date function without argument: the evaluation time's field, as a one-series vector.
    fn date_of_steps(&self, f: fn(f64) -> f64) -> Result<Val, QueryError> {
        // Whole seconds truncated toward zero, as Go's `enh.Ts / 1000`.
        let points: Vec<(i64, f64)> = self
            .steps
            .iter()
            .map(|t| (t, f((t / 1000) as f64)))
            .collect();
        self.ctx.add(points.len())?;
        Ok(Val::Vector(vec![StepSeries {
            labels: Labels::empty(),
            drop_name: false,
            points,
        }]))
    }

    /// An instant-vector function applied value by value. Output labels lose the metric name; two
    /// input series that then coincide may not share a step.
    fn map_elementwise(
        &self,
        arg: &Node,
        scalar_args: &[Node],
        f: impl Fn(i64, f64, &[f64]) -> Option<f64>,
    ) -> Result<Val, QueryError> {
        let before = self.ctx.current();
        let scalars: Vec<Vec<f64>> = scalar_args
            .iter()
            .map(|a| self.eval(a).map(Val::into_scalar))
            .collect::<Result<_, _>>()?;
        let input = self.eval(arg)?.into_series();
        let mut args = vec![0.0; scalars.len()];
        let mut out = Vec::with_capacity(input.len());
        for mut s in input {
            self.ctx.check()?;
            s.points.retain_mut(|(t, v)| {
                let step = self.steps.index(*t);
                for (a, sc) in args.iter_mut().zip(&scalars) {
                    *a = sc[step];
                }
                match f(*t, *v, &args) {
                    Some(nv) => {
                        *v = nv;
                        true
                    }
                    None => false,
                }
            });
            if s.points.is_empty() {
                continue;
            }
            self.drop_name(&mut s.labels, &mut s.drop_name);
            out.push(s);
        }
        if !self.delayed() {
            out = merge_same_labelsets(out)?;
        }
        let total: usize = out.iter().map(|s| s.points.len()).sum();
        self.ctx.set(before + total)?;
        Ok(Val::Vector(out))
    }

    fn eval_scalar_fn(&self, arg: &Node) -> Result<Val, QueryError> {
        let input = self.eval(arg)?.into_series();
        let mut out = vec![f64::NAN; self.steps.count()];
        let mut seen = vec![0u32; self.steps.count()];
        for s in &input {
            for &(t, v) in &s.points {
                let i = self.steps.index(t);
                seen[i] += 1;
                out[i] = if seen[i] == 1 { v } else { f64::NAN };
            }
        }
        Ok(Val::Scalar(out))
    }

    /// `timestamp(selector)`: the time of the sample each step selects, not the step's time.
    fn eval_timestamp_of_selector(&self, sel: &super::plan::Selector) -> Result<Val, QueryError> {
        let lookback = self.opts.lookback_delta_ms;
        let (first, last) = self.ref_range(sel.at, sel.offset);
        let selected = selector::select(self.db, &sel.matchers, first - lookback + 1, last);
        let mut out = Vec::with_capacity(selected.len());
        for s in selected {
            let samples = selector::decode(self.ctx, &s, false)?;
            let mut cursor = InstantCursor::default();
            let mut points = Vec::new();
            for ts in self.steps.iter() {
                let r = self.ref_time(sel.at, sel.offset, ts);
                if let Some((t, _)) = cursor.at(&samples, r, lookback) {
                    self.ctx.add(1)?;
                    points.push((ts, t as f64 / 1e3));
                }
            }
            if points.is_empty() {
                continue;
            }
            let mut series = StepSeries {
                labels: s.labels().clone(),
                drop_name: false,
                points,
            };
            self.drop_name(&mut series.labels, &mut series.drop_name);
            out.push(series);
        }
        if !self.delayed() {
            out = merge_same_labelsets(out)?;
        }
        Ok(Val::Vector(out))
    }

    /// The output of `absent`/`absent_over_time`: value 1 at the steps where no input series has a
    /// point, labelled from the argument's equality matchers.
    pub(crate) fn absent_series(&self, present: &[StepSeries], arg: &Node) -> Vec<StepSeries> {
        let n = self.steps.count();
        let mut found = vec![false; n];
        for s in present {
            for &(t, _) in &s.points {
                found[self.steps.index(t)] = true;
            }
        }
        let points: Vec<(i64, f64)> = self
            .steps
            .iter()
            .zip(&found)
            .filter(|(_, f)| !**f)
            .map(|(t, _)| (t, 1.0))
            .collect();
        if points.is_empty() {
            return Vec::new();
        }
        vec![StepSeries {
            labels: absent_labels(arg),
            drop_name: false,
            points,
        }]
    }

    fn eval_absent(&self, c: &Call) -> Result<Val, QueryError> {
        let input = self.eval(&c.args[0])?.into_series();
        Ok(Val::Vector(self.absent_series(&input, &c.args[0])))
    }

    fn string_arg(c: &Call, i: usize) -> String {
        match c.args.get(i) {
            Some(Node::Str { s, .. }) => s.clone(),
            _ => String::new(),
        }
    }

    fn eval_label_replace(&self, c: &Call) -> Result<Val, QueryError> {
        let [dst, repl, src, re] = [1, 2, 3, 4].map(|i| Self::string_arg(c, i));
        // Arguments are checked before the vector is evaluated: a bad regex fails even on no data.
        let call = LabelReplace::new(&dst, &repl, &src, &re)
            .map_err(|e| QueryError::Execution(e.to_string()))?;
        let mut series = self.eval(&c.args[0])?.into_series();
        for s in &mut series {
            if let Some(labels) = call.apply(&s.labels) {
                s.labels = labels;
                // Writing `__name__` explicitly keeps it even where it was to be dropped.
                if dst == METRIC_NAME {
                    s.drop_name = false;
                }
            }
        }
        Ok(Val::Vector(merge_same_labelsets(series)?))
    }

    fn eval_label_join(&self, c: &Call) -> Result<Val, QueryError> {
        let dst = Self::string_arg(c, 1);
        let sep = Self::string_arg(c, 2);
        let srcs: Vec<String> = (3..c.args.len()).map(|i| Self::string_arg(c, i)).collect();
        let srcs: Vec<&str> = srcs.iter().map(String::as_str).collect();
        let call =
            LabelJoin::new(&dst, &sep, &srcs).map_err(|e| QueryError::Execution(e.to_string()))?;
        let mut series = self.eval(&c.args[0])?.into_series();
        for s in &mut series {
            s.labels = call.apply(&s.labels);
            if dst == METRIC_NAME {
                s.drop_name = false;
            }
        }
        Ok(Val::Vector(merge_same_labelsets(series)?))
    }

    /// `sort*`: orders an instant query's result; a range query's result is ordered by labels
    /// anyway, which Prometheus points out with a warning.
    fn eval_sort(&self, c: &Call) -> Result<Val, QueryError> {
        if !self.steps.is_instant() {
            let pos = self.pos(Some(c.pos));
            self.ctx
                .annotate(Annotation::SortInRangeQuery, pos.as_deref());
        }
        let mut series = self.eval(&c.args[0])?.into_series();
        if !self.steps.is_instant() {
            return Ok(Val::Vector(series));
        }
        let value = |s: &StepSeries| s.points.first().map_or(f64::NAN, |p| p.1);
        match c.name.as_str() {
            "sort" => series.sort_by(|a, b| nan_last(value(a), value(b), false)),
            "sort_desc" => series.sort_by(|a, b| nan_last(value(a), value(b), true)),
            name => {
                let names: Vec<String> =
                    (1..c.args.len()).map(|i| Self::string_arg(c, i)).collect();
                let desc = name == "sort_by_label_desc";
                series.sort_by(|a, b| {
                    for n in &names {
                        let (x, y) = (a.labels.get(n).unwrap_or(""), b.labels.get(n).unwrap_or(""));
                        if x == y {
                            continue;
                        }
                        let less = natural_less(x, y);
                        return if less != desc {
                            std::cmp::Ordering::Less
                        } else {
                            std::cmp::Ordering::Greater
                        };
                    }
                    let o = a.labels.cmp(&b.labels);
                    if desc { o.reverse() } else { o }
                });
            }
        }
        Ok(Val::Vector(series))
    }
}

fn nan_last(a: f64, b: f64, desc: bool) -> std::cmp::Ordering {
    use std::cmp::Ordering::*;
    match (a.is_nan(), b.is_nan()) {
        (true, true) => Equal,
        (true, false) => Greater,
        (false, true) => Less,
        _ if desc => b.partial_cmp(&a).unwrap_or(Equal),
        _ => a.partial_cmp(&b).unwrap_or(Equal),
    }
}

/// Labels `absent`/`absent_over_time` give their output: the argument selector's equality matchers
/// (not on `__name__`); a label matched more than once, or also by another kind of matcher, is left
/// out.
pub(crate) fn absent_labels(arg: &Node) -> Labels {
    let matchers = match arg {
        Node::Vector(sel) | Node::Matrix { sel, .. } => &sel.matchers,
        _ => return Labels::empty(),
    };
    let mut set: Vec<Label> = Vec::new();
    let mut has: Vec<&str> = Vec::new();
    for m in matchers {
        if m.name() == METRIC_NAME {
            continue;
        }
        set.retain(|l| l.name != m.name());
        if m.kind() == MatchType::Equal && !has.contains(&m.name()) {
            set.push(Label::new(m.name(), m.value()));
            has.push(m.name());
        }
    }
    labels_from(set)
}

type ElemFn = fn(f64, &[f64]) -> Option<f64>;

/// The element-wise instant-vector functions with scalar arguments: value and arguments to the new
/// value (`None` drops the element). One-argument functions come from `math::by_name`.
fn elementwise(name: &str) -> Option<ElemFn> {
    Some(match name {
        "clamp" => |v, a| math::clamp(v, a[0], a[1]),
        "clamp_min" => |v, a| Some(math::clamp_min(v, a[0])),
        "clamp_max" => |v, a| Some(math::clamp_max(v, a[0])),
        "round" => |v, a| Some(math::round(v, a.first().copied().unwrap_or(1.0))),
        _ => return None,
    })
}
