//! Function calls: how each PromQL function is fed and what happens to labels around it.
//!
//! Owns the dispatch (range-vector functions go to `range_call`), element-wise instant-vector
//! functions (mapped series by series; `__name__` dropped), and the functions that
//! need the evaluator itself: `time`, `vector`, `scalar`, `timestamp` (sample times of a selector),
//! `absent`/`absent_over_time` (labels derived from equality matchers), `label_replace`/`label_join`,
//! the `sort*` family, `histogram_quantile` over classic buckets. It also raises the annotations tied
//! to calls (possible non-counter for `rate`/`increase`, sort in a range query, quantile range,
//! bad `le`). The per-window and per-value math comes from the function library (private
//! fallbacks in `rangefns`/`fallback` until unified).

use std::collections::HashMap;

use ember::MatchType;
use ember_index::{Label, Labels};

use super::QueryError;
use super::aggregate::go_float;
use super::eval::{Evaluator, Val, merge_same_labelsets};
use super::fallback::{Bucket, bucket_quantile, civil, natural_less};
use super::plan::{Call, Node, Ty};
use super::selector::{self, InstantCursor};
use super::types::{METRIC_NAME, StepSeries, go_quote, labels_from, set_label};

const DATE_FUNCS: &[&str] = &[
    "days_in_month",
    "day_of_month",
    "day_of_week",
    "day_of_year",
    "hour",
    "minute",
    "month",
    "year",
];

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
            // Native-histogram functions: Ember stores floats only, so there is nothing to act on.
            "histogram_count" | "histogram_sum" | "histogram_avg" | "histogram_stddev"
            | "histogram_stdvar" | "histogram_fraction" => {
                for a in &c.args {
                    self.eval(a)?;
                }
                Ok(Val::Vector(Vec::new()))
            }
            _ if DATE_FUNCS.contains(&name) && c.args.is_empty() => {
                let points: Vec<(i64, f64)> = steps
                    .iter()
                    .map(|t| (t, date_field(name, t.div_euclid(1000))))
                    .collect();
                self.ctx.add(points.len())?;
                Ok(Val::Vector(vec![StepSeries {
                    labels: Labels::empty(),
                    drop_name: false,
                    points,
                }]))
            }
            _ if DATE_FUNCS.contains(&name) => {
                self.map_elementwise(&c.args[0], &[], |_, v, _| Some(date_field(name, v as i64)))
            }
            _ => {
                let f = elementwise(name).ok_or_else(|| {
                    QueryError::Execution(format!("function \"{name}\" is not supported"))
                })?;
                self.map_elementwise(&c.args[0], &c.args[1..], move |_, v, a| f(v, a))
            }
        }
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
            Some(Node::Str(s)) => s.clone(),
            _ => String::new(),
        }
    }

    fn eval_label_replace(&self, c: &Call) -> Result<Val, QueryError> {
        let dst = Self::string_arg(c, 1);
        let repl = Self::string_arg(c, 2);
        let src = Self::string_arg(c, 3);
        let re_text = Self::string_arg(c, 4);
        let re = regex::Regex::new(&format!("^(?s:{re_text})$")).map_err(|_| {
            QueryError::Execution(format!(
                "invalid regular expression in label_replace(): {re_text}"
            ))
        })?;
        if dst.is_empty() {
            return Err(QueryError::Execution(format!(
                "invalid destination label name in label_replace(): {dst}"
            )));
        }
        let mut series = self.eval(&c.args[0])?.into_series();
        for s in &mut series {
            let src_val = s.labels.get(&src).unwrap_or("");
            if let Some(caps) = re.captures(src_val) {
                let mut res = String::new();
                caps.expand(&repl, &mut res);
                s.labels = set_label(&s.labels, &dst, &res);
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
        if let Some(bad) = srcs.iter().find(|s| s.is_empty()) {
            return Err(QueryError::Execution(format!(
                "invalid source label name in label_join(): {bad}"
            )));
        }
        if dst.is_empty() {
            return Err(QueryError::Execution(format!(
                "invalid destination label name in label_join(): {dst}"
            )));
        }
        let mut series = self.eval(&c.args[0])?.into_series();
        for s in &mut series {
            let joined = srcs
                .iter()
                .map(|n| s.labels.get(n).unwrap_or(""))
                .collect::<Vec<_>>()
                .join(&sep);
            s.labels = set_label(&s.labels, &dst, &joined);
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
            self.ctx.warn(format!(
                "PromQL warning: sort is ineffective for range queries since results are always \
                 ordered by labels{}",
                self.pos(Some(c.pos))
            ));
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

    /// `histogram_quantile(q, buckets)` over classic histograms: at each step, the series sharing all
    /// labels but `le` form one histogram.
    fn eval_histogram_quantile(&self, c: &Call) -> Result<Val, QueryError> {
        let before = self.ctx.current();
        let q = self.eval(&c.args[0])?.into_scalar();
        let input = self.eval(&c.args[1])?.into_series();
        let q_pos = self.pos(c.args[0].pos());
        let v_pos = self.pos(c.args[1].pos());
        if let Some(&bad) = q.iter().find(|q| !(0.0..=1.0).contains(*q)) {
            self.ctx.warn(format!(
                "PromQL warning: quantile value should be between 0 and 1, got {}{}",
                go_float(bad),
                q_pos
            ));
        }
        // Bucket bound and histogram of each input series, computed once.
        let mut hist_of: HashMap<Labels, usize> = HashMap::new();
        let mut hist_labels: Vec<Labels> = Vec::new();
        let mut member: Vec<Option<(usize, f64)>> = Vec::with_capacity(input.len());
        for s in &input {
            let le = s.labels.get("le").unwrap_or("");
            let Some(upper) = parse_go_float(le) else {
                // Prometheus names the metric only when it still has it (delayed removal).
                let name = match s.labels.metric_name() {
                    Some(n) if self.delayed() => format!(" for metric name {}", go_quote(n)),
                    _ => String::new(),
                };
                self.ctx.warn(format!(
                    "PromQL warning: bucket label \"le\" is missing or has a malformed value of {}{}{}",
                    go_quote(le),
                    name,
                    v_pos
                ));
                member.push(None);
                continue;
            };
            let key = s.labels.without(&["le"]);
            let next = hist_labels.len();
            let h = *hist_of.entry(key.clone()).or_insert_with(|| {
                hist_labels.push(key);
                next
            });
            member.push(Some((h, upper)));
        }
        let mut per_hist: Vec<Vec<Bucket>> = vec![Vec::new(); hist_labels.len()];
        let mut out: Vec<StepSeries> = hist_labels
            .iter()
            .map(|l| {
                let mut s = StepSeries {
                    labels: l.clone(),
                    drop_name: false,
                    points: Vec::new(),
                };
                self.drop_name(&mut s.labels, &mut s.drop_name);
                s
            })
            .collect();
        let mut cursors = vec![0usize; input.len()];
        for (step, ts) in self.steps.iter().enumerate() {
            self.ctx.check()?;
            per_hist.iter_mut().for_each(Vec::clear);
            for (si, s) in input.iter().enumerate() {
                if let Some(&(t, v)) = s.points.get(cursors[si])
                    && t == ts
                {
                    cursors[si] += 1;
                    if let Some((h, upper)) = member[si] {
                        per_hist[h].push(Bucket { upper, count: v });
                    }
                }
            }
            for (h, buckets) in per_hist.iter_mut().enumerate() {
                if buckets.is_empty() {
                    continue;
                }
                let r = bucket_quantile(q[step], buckets);
                if r.forced_monotonic {
                    let name = hist_labels[h].metric_name().filter(|_| self.delayed());
                    self.ctx.info(format!(
                        "PromQL info: input to histogram_quantile needed to be fixed for \
                         monotonicity (see https://prometheus.io/docs/prometheus/latest/querying/functions/#histogram_quantile){}{}",
                        name.map(|n| format!(" for metric name {}", go_quote(n))).unwrap_or_default(),
                        v_pos
                    ));
                }
                out[h].points.push((ts, r.value));
            }
        }
        out.retain(|s| !s.points.is_empty());
        if !self.delayed() {
            out = merge_same_labelsets(out)?;
        }
        let total: usize = out.iter().map(|s| s.points.len()).sum();
        self.ctx.set(before + total)?;
        Ok(Val::Vector(out))
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

/// Go's `strconv.ParseFloat` for bucket bounds (accepts `+Inf`, `Inf`, `NaN` spellings).
fn parse_go_float(s: &str) -> Option<f64> {
    if s.is_empty() {
        return None;
    }
    s.parse::<f64>().ok()
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

/// Calendar field `name` of Unix time `secs` (UTC).
fn date_field(name: &str, secs: i64) -> f64 {
    let c = civil(secs);
    f64::from(match name {
        "days_in_month" => c.days_in_month,
        "day_of_month" => c.day,
        "day_of_week" => c.weekday,
        "day_of_year" => c.yday,
        "hour" => c.hour,
        "minute" => c.minute,
        "month" => c.month,
        _ => return c.year as f64,
    })
}

/// Go's `math.Max`: NaN wins (Rust's `f64::max` would ignore it).
fn go_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// Go's `math.Min`: NaN wins.
fn go_min(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.min(b)
    }
}

type ElemFn = fn(f64, &[f64]) -> Option<f64>;

/// The element-wise instant-vector functions: value and scalar arguments to the new value (`None`
/// drops the element).
fn elementwise(name: &str) -> Option<ElemFn> {
    Some(match name {
        "abs" => |v, _| Some(v.abs()),
        "ceil" => |v, _| Some(v.ceil()),
        "floor" => |v, _| Some(v.floor()),
        "exp" => |v, _| Some(v.exp()),
        "sqrt" => |v, _| Some(v.sqrt()),
        "ln" => |v, _| Some(v.ln()),
        "log2" => |v, _| Some(v.log2()),
        "log10" => |v, _| Some(v.log10()),
        "sin" => |v, _| Some(v.sin()),
        "cos" => |v, _| Some(v.cos()),
        "tan" => |v, _| Some(v.tan()),
        "asin" => |v, _| Some(v.asin()),
        "acos" => |v, _| Some(v.acos()),
        "atan" => |v, _| Some(v.atan()),
        "sinh" => |v, _| Some(v.sinh()),
        "cosh" => |v, _| Some(v.cosh()),
        "tanh" => |v, _| Some(v.tanh()),
        "asinh" => |v, _| Some(v.asinh()),
        "acosh" => |v, _| Some(v.acosh()),
        "atanh" => |v, _| Some(v.atanh()),
        "rad" => |v, _| Some(v * std::f64::consts::PI / 180.0),
        "deg" => |v, _| Some(v * 180.0 / std::f64::consts::PI),
        "sgn" => |v, _| {
            Some(if v < 0.0 {
                -1.0
            } else if v > 0.0 {
                1.0
            } else {
                v
            })
        },
        "clamp" => |v, a| (a[1] >= a[0]).then(|| go_max(a[0], go_min(a[1], v))),
        "clamp_min" => |v, a| Some(go_max(a[0], v)),
        "clamp_max" => |v, a| Some(go_min(a[0], v)),
        "round" => |v, a| {
            let to = a.first().copied().unwrap_or(1.0);
            let inv = 1.0 / to;
            Some((v * inv + 0.5).floor() / inv)
        },
        _ => return None,
    })
}
