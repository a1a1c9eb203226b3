//! Node dispatch and the per-step machinery shared by operators: evaluating a plan over a grid of
//! steps, selectors, unary minus, step-invariant subtrees, and turning the final value into a result.
//!
//! Owns [`Evaluator`] (one grid of steps plus the query-wide context), [`Val`] (what a node evaluates
//! to over the grid: a scalar per step, or series with at most one point per step), the duplicate
//! label set rule shared by all operators ([`merge_same_labelsets`]), and the end of a query (delayed
//! `__name__` removal, result ordering, conversion to `crate::value`). Operators live in their own modules (`binary`, `aggregate`, `call`,
//! `subquery`) as further `impl Evaluator` blocks.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use ember::Db;
use ember_index::Labels;

use super::limits::{Cancel, QueryCtx};
use super::plan::{At, Node, Selector, Ty};
use super::range_call::{extension_of, widening};
use super::rangefns;
use super::selector::{self, InstantCursor, WindowCursor};
use super::types::{StepSeries, Steps, drop_metric_name};
use super::{QueryError, QueryOpts, QueryResult, QueryStats};
use crate::functions::Annotation;
use crate::functions::rate::Extension;
use crate::value::{self, Value};

/// What a node evaluates to over an evaluator's steps.
#[derive(Debug)]
pub(crate) enum Val {
    /// One value per step.
    Scalar(Vec<f64>),
    String(String),
    /// An instant vector over the steps: each series has at most one point per step, at the step's
    /// timestamp.
    Vector(Vec<StepSeries>),
    /// A range vector (only ever evaluated for a single step): raw sample timestamps.
    Matrix(Vec<StepSeries>),
}

impl Val {
    pub(crate) fn into_series(self) -> Vec<StepSeries> {
        match self {
            Val::Vector(v) | Val::Matrix(v) => v,
            Val::Scalar(_) | Val::String(_) => Vec::new(),
        }
    }

    pub(crate) fn into_scalar(self) -> Vec<f64> {
        match self {
            Val::Scalar(v) => v,
            _ => Vec::new(),
        }
    }

    fn points(&self) -> usize {
        match self {
            Val::Scalar(v) => v.len(),
            Val::String(_) => 0,
            Val::Vector(s) | Val::Matrix(s) => s.iter().map(|s| s.points.len()).sum(),
        }
    }
}

/// Evaluates nodes over one grid of steps. Subqueries and step-invariant subtrees get child
/// evaluators with their own grid; all share the query's [`QueryCtx`].
pub(crate) struct Evaluator<'a> {
    pub db: &'a Db,
    pub ctx: &'a QueryCtx,
    pub opts: &'a QueryOpts,
    pub steps: Steps,
    /// The query's own start and end, which `@ start()` and `@ end()` refer to at any depth.
    pub query_start: i64,
    pub query_end: i64,
    /// The query text, for the `(line:col)` suffix of annotations.
    pub query: Option<&'a str>,
    /// Whether `steps` is the query's own grid (not a subquery's or a step-invariant subtree's), so
    /// sample statistics can be kept per step.
    pub query_grid: bool,
}

impl<'a> Evaluator<'a> {
    pub(crate) fn child(&self, steps: Steps) -> Evaluator<'a> {
        Evaluator {
            steps,
            db: self.db,
            ctx: self.ctx,
            opts: self.opts,
            query_start: self.query_start,
            query_end: self.query_end,
            query: self.query,
            query_grid: false,
        }
    }

    /// Counts samples a selector of this evaluator gives the evaluation at step `ts` (see
    /// [`QueryCtx::count_samples`]).
    pub(crate) fn count_samples(&self, ts: i64, queryable: u64, read: u64) {
        let step = self.query_grid.then_some(ts);
        self.ctx.count_samples(step, queryable, read);
    }

    pub(crate) fn delayed(&self) -> bool {
        self.opts.delayed_name_removal
    }

    pub(crate) fn at_time(&self, at: At) -> i64 {
        match at {
            At::Time(t) => t,
            At::Start => self.query_start,
            At::End => self.query_end,
        }
    }

    /// `line:col` of a byte offset into the query, as Prometheus positions annotations (`None`
    /// without the query text or the offset).
    pub(crate) fn pos(&self, pos: Option<usize>) -> Option<String> {
        let (q, pos) = (self.query?, pos?);
        let pos = pos.min(q.len());
        let before = &q.as_bytes()[..pos];
        let line = 1 + before.iter().filter(|&&b| b == b'\n').count();
        let col = match before.iter().rposition(|&b| b == b'\n') {
            Some(nl) => pos - nl,
            None => pos + 1,
        };
        Some(format!("{line}:{col}"))
    }

    /// Records an annotation at the position of `node` in the query.
    pub(crate) fn annotate(&self, a: Annotation, node: Option<&Node>) {
        let pos = self.pos(node.and_then(Node::pos));
        self.ctx.annotate(a, pos.as_deref());
    }

    /// Marks a series as losing its metric name: removed now, or at the end with delayed removal.
    pub(crate) fn drop_name(&self, labels: &mut Labels, drop_name: &mut bool) {
        if !self.delayed() {
            *labels = drop_metric_name(labels);
        }
        *drop_name = true;
    }

    pub(crate) fn eval(&self, node: &Node) -> Result<Val, QueryError> {
        self.ctx.check()?;
        if self.steps.count() == 0 {
            return Ok(match node.ty() {
                Ty::Scalar => Val::Scalar(Vec::new()),
                Ty::String => Val::String(String::new()),
                Ty::Vector => Val::Vector(Vec::new()),
                Ty::Matrix => Val::Matrix(Vec::new()),
            });
        }
        if self.steps.count() > 1
            && matches!(node.ty(), Ty::Vector | Ty::Scalar)
            && !matches!(node, Node::Number { .. })
            && node.is_step_invariant()
        {
            return self.eval_invariant(node);
        }
        match node {
            Node::Number { v, .. } => Ok(Val::Scalar(vec![*v; self.steps.count()])),
            Node::Str { s, .. } => Ok(Val::String(s.clone())),
            Node::Vector(sel) => Ok(Val::Vector(self.eval_vector_selector(sel)?)),
            Node::Matrix { sel, range } => self.eval_matrix_selector(sel, *range),
            Node::Subquery(sq) => Ok(Val::Matrix(self.eval_subquery(sq)?)),
            Node::Neg(inner) => self.eval_neg(inner),
            Node::Binary(b) => self.eval_binary(b),
            Node::Aggregate(a) => self.eval_aggregate(a),
            Node::Call(c) => self.eval_call(c),
        }
    }

    /// Evaluates a step-invariant node once, at the first step, and repeats the result at every step.
    fn eval_invariant(&self, node: &Node) -> Result<Val, QueryError> {
        let once = self.child(Steps {
            start: self.steps.start,
            end: self.steps.start,
            interval: self.steps.interval,
        });
        let val = once.eval(node)?;
        let n = self.steps.count();
        // Every repeated point is held in memory.
        self.ctx.add(val.points() * (n - 1))?;
        Ok(match val {
            Val::Scalar(v) => Val::Scalar(vec![v.first().copied().unwrap_or(f64::NAN); n]),
            Val::Vector(series) => Val::Vector(
                series
                    .into_iter()
                    .map(|mut s| {
                        let v = s.points[0].1;
                        s.points = self.steps.iter().map(|t| (t, v)).collect();
                        s
                    })
                    .collect(),
            ),
            other => other,
        })
    }

    /// The reference times a selector reads at, first and last: the steps shifted by the offset, or
    /// the `@` time.
    pub(crate) fn ref_range(&self, at: Option<At>, offset: i64) -> (i64, i64) {
        match at {
            Some(at) => {
                let t = self.at_time(at) - offset;
                (t, t)
            }
            None => (self.steps.start - offset, self.steps.end - offset),
        }
    }

    /// Reference time of step `ts` for a selector.
    pub(crate) fn ref_time(&self, at: Option<At>, offset: i64, ts: i64) -> i64 {
        match at {
            Some(at) => self.at_time(at) - offset,
            None => ts - offset,
        }
    }

    /// An instant vector selector over all steps.
    pub(crate) fn eval_vector_selector(
        &self,
        sel: &Selector,
    ) -> Result<Vec<StepSeries>, QueryError> {
        let lookback = self.opts.lookback_delta_ms;
        let (first, last) = self.ref_range(sel.at, sel.offset);
        if sel.smoothed {
            return self.eval_smoothed_selector(sel);
        }
        let selected = selector::select(self.db, &sel.matchers, first - lookback + 1, last);
        let mut out = Vec::with_capacity(selected.len());
        for s in selected {
            let samples = selector::decode(self.ctx, &s, false)?;
            let mut cursor = InstantCursor::default();
            let mut points = Vec::new();
            for ts in self.steps.iter() {
                let r = self.ref_time(sel.at, sel.offset, ts);
                if let Some((_, v)) = cursor.at(&samples, r, lookback) {
                    self.ctx.add(1)?;
                    self.count_samples(ts, 1, 1);
                    points.push((ts, v));
                }
            }
            if !points.is_empty() {
                out.push(StepSeries {
                    labels: s.labels().clone(),
                    drop_name: false,
                    points,
                });
            }
        }
        Ok(out)
    }

    /// A `smoothed` instant selector: at each step the value at the reference time, interpolated
    /// between the samples around it (within one lookback delta either side).
    fn eval_smoothed_selector(&self, sel: &Selector) -> Result<Vec<StepSeries>, QueryError> {
        let lookback = self.opts.lookback_delta_ms;
        let (first, last) = self.ref_range(sel.at, sel.offset);
        let selected = selector::select(
            self.db,
            &sel.matchers,
            first - lookback + 1,
            last + lookback,
        );
        let mut out = Vec::with_capacity(selected.len());
        for s in selected {
            let samples = selector::decode(self.ctx, &s, true)?;
            let mut cursor = WindowCursor::default();
            let mut points = Vec::new();
            for ts in self.steps.iter() {
                let r = self.ref_time(sel.at, sel.offset, ts);
                let window = cursor.window(&samples, r - lookback, r + lookback);
                if let Some(v) = rangefns::smoothed_value(window, r) {
                    self.ctx.add(1)?;
                    self.count_samples(ts, 1, 1);
                    points.push((ts, v));
                }
            }
            if !points.is_empty() {
                out.push(StepSeries {
                    labels: s.labels().clone(),
                    drop_name: false,
                    points,
                });
            }
        }
        Ok(out)
    }

    /// A range vector selector evaluated on its own (the whole query, or a subquery's operand is
    /// not allowed to be one): the window `(ref - range, ref]` at the first step.
    fn eval_matrix_selector(&self, sel: &Selector, range: i64) -> Result<Val, QueryError> {
        let maxt = self.ref_time(sel.at, sel.offset, self.steps.start);
        let extension = extension_of(sel.anchored, sel.smoothed);
        let (before, after) = widening(extension, self.opts.lookback_delta_ms);
        let selected = selector::select(
            self.db,
            &sel.matchers,
            maxt - range - before + 1,
            maxt + after,
        );
        let mut out = Vec::with_capacity(selected.len());
        for s in selected {
            let mut samples = selector::decode(self.ctx, &s, true)?;
            if let Some(ext) = extension {
                samples = rangefns::extend_window(
                    &samples,
                    maxt - range,
                    maxt,
                    ext == Extension::Smoothed,
                );
            }
            if samples.is_empty() {
                continue;
            }
            self.ctx.add(samples.len())?;
            let n = samples.len() as u64;
            self.count_samples(self.steps.start, n, n);
            out.push(StepSeries {
                labels: s.labels().clone(),
                drop_name: false,
                points: samples,
            });
        }
        Ok(Val::Matrix(out))
    }

    fn eval_neg(&self, inner: &Node) -> Result<Val, QueryError> {
        Ok(match self.eval(inner)? {
            Val::Scalar(v) => Val::Scalar(v.into_iter().map(|x| -x).collect()),
            Val::Vector(mut series) => {
                for s in &mut series {
                    self.drop_name(&mut s.labels, &mut s.drop_name);
                    for p in &mut s.points {
                        p.1 = -p.1;
                    }
                }
                if !self.delayed() {
                    series = merge_same_labelsets(series)?;
                }
                Val::Vector(series)
            }
            other => other,
        })
    }
}

pub(crate) fn duplicate_labelset() -> QueryError {
    QueryError::Execution("vector cannot contain metrics with the same labelset".into())
}

/// Prometheus' `mergeSeriesWithSameLabelset`: series that ended up with one label set (after a name
/// drop or relabelling) are merged when their points do not collide; a collision is the duplicate
/// labelset error.
pub(crate) fn merge_same_labelsets(series: Vec<StepSeries>) -> Result<Vec<StepSeries>, QueryError> {
    if series.len() < 2 {
        return Ok(series);
    }
    let mut index: HashMap<Labels, usize> = HashMap::with_capacity(series.len());
    let mut out: Vec<StepSeries> = Vec::with_capacity(series.len());
    let mut merged = false;
    for s in series {
        match index.get(&s.labels) {
            Some(&i) => {
                out[i].points.extend(s.points);
                merged = true;
            }
            None => {
                index.insert(s.labels.clone(), out.len());
                out.push(s);
            }
        }
    }
    if merged {
        for s in &mut out {
            s.points.sort_by_key(|p| p.0);
            if s.points.windows(2).any(|w| w[0].0 == w[1].0) {
                return Err(duplicate_labelset());
            }
        }
    }
    Ok(out)
}

/// Runs a whole query: `interval == 0` is an instant query at `start`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn run(
    db: &Db,
    opts: &QueryOpts,
    plan: &Node,
    query: Option<&str>,
    start: i64,
    end: i64,
    interval: i64,
    deadline: Instant,
    cancel: &Cancel,
) -> Result<QueryResult, QueryError> {
    let instant = interval == 0;
    let ty = plan.ty();
    if !instant && !matches!(ty, Ty::Scalar | Ty::Vector) {
        let name = match ty {
            Ty::Matrix => "range vector",
            _ => "string",
        };
        return Err(QueryError::BadRequest(format!(
            "invalid expression type \"{name}\" for range query, must be Scalar or instant Vector"
        )));
    }
    let ctx = QueryCtx::new(
        deadline,
        cancel.clone(),
        opts.max_samples,
        opts.max_memory_bytes,
        opts.per_step_stats.then_some(Steps {
            start,
            end,
            interval: if instant { 1 } else { interval },
        }),
    );
    let ev = Evaluator {
        db,
        ctx: &ctx,
        opts,
        // An instant query is a one-step range query; the interval only has to be positive.
        steps: Steps {
            start,
            end,
            interval: if instant { 1 } else { interval },
        },
        query_start: start,
        query_end: end,
        query,
        query_grid: true,
    };
    let eval_started = Instant::now();
    let mut val = ev.eval(plan)?;
    if opts.delayed_name_removal {
        val = match val {
            Val::Vector(s) => Val::Vector(finish_name_removal(s)?),
            Val::Matrix(s) => Val::Matrix(finish_name_removal(s)?),
            other => other,
        };
    }
    let inner_eval = eval_started.elapsed();
    let sort_started = Instant::now();
    let value = match val {
        Val::String(s) => Value::String { t: start, s },
        Val::Scalar(v) if instant => Value::Scalar {
            t: start,
            v: v.first().copied().unwrap_or(f64::NAN),
        },
        Val::Scalar(v) => Value::Matrix(vec![value::Series {
            labels: Labels::empty(),
            samples: ev.steps.iter().zip(v).collect(),
        }]),
        Val::Vector(series) if instant => Value::Vector(
            series
                .into_iter()
                .filter_map(|s| {
                    let (_, v) = *s.points.first()?;
                    Some(value::Sample {
                        labels: s.labels,
                        t: start,
                        v,
                    })
                })
                .collect(),
        ),
        Val::Vector(series) | Val::Matrix(series) => {
            let mut m: Vec<value::Series> = series
                .into_iter()
                .map(|s| value::Series {
                    labels: s.labels,
                    samples: s.points,
                })
                .collect();
            m.sort_by(|a, b| a.labels.cmp(&b.labels));
            Value::Matrix(m)
        }
    };
    let result_sort = sort_started.elapsed();
    let ann = ctx.take_annotations();
    Ok(QueryResult {
        value,
        warnings: ann.warnings(),
        infos: ann.infos(),
        stats: QueryStats {
            samples: ctx.sample_stats(),
            preparation: Duration::ZERO,
            inner_eval,
            result_sort,
        },
    })
}

/// The end of delayed `__name__` removal: drop the names marked for dropping, then merge what
/// became one series.
fn finish_name_removal(mut series: Vec<StepSeries>) -> Result<Vec<StepSeries>, QueryError> {
    for s in &mut series {
        if s.drop_name {
            s.labels = drop_metric_name(&s.labels);
        }
    }
    merge_same_labelsets(series)
}
