//! Calls of functions over a range vector (`rate(x[5m])`, `max_over_time(expr[1h:1m])`, …).
//!
//! Owns feeding them: for each series, the window `(ref - range, ref]` at every step (`ref` being the
//! step, or the `@` time, minus the offset), cut from the series' samples decoded once — from storage
//! for a matrix selector, from the subquery's points otherwise — with forward-moving bounds; the scalar
//! arguments at that step; the output labels (`__name__` dropped except by `first_over_time` and
//! `last_over_time`); the "might not be a counter" info of `rate`/`increase`; `absent_over_time`'s
//! complement; the duplicate label set check. The math of one window is the function library's
//! (the private fallback `rangefns` until unified).

use ember_index::Labels;

use super::QueryError;
use super::eval::{Evaluator, Val, duplicate_labelset};
use super::plan::{Call, Node};
use super::rangefns::{self, ANCHORED_SAFE, SMOOTHED_SAFE, Window};
use super::selector::{self, WindowCursor};
use super::types::{StepSeries, drop_metric_name};
use crate::functions::RangeCtx;
use crate::functions::annotations::{invalid_quantile, possible_non_counter};
use crate::functions::rate::Extension;

/// Where a range function's series come from.
enum Source {
    /// A matrix selector's series, decoded one at a time.
    Stored(Vec<ember::Series>),
    /// A subquery's result.
    Computed(Vec<StepSeries>),
}

impl Evaluator<'_> {
    /// A function with a range-vector argument at `mi` (a matrix selector or a subquery).
    pub(crate) fn eval_range_call(&self, c: &Call, mi: usize) -> Result<Val, QueryError> {
        let name = c.name.as_str();
        if !rangefns::is_range_fn(name) {
            return Err(QueryError::Execution(format!(
                "function \"{name}\" is not supported"
            )));
        }
        let before = self.ctx.current();
        let scalars: Vec<Vec<f64>> = c
            .args
            .iter()
            .enumerate()
            .filter(|(i, _)| *i != mi)
            .map(|(_, a)| self.eval(a).map(Val::into_scalar))
            .collect::<Result<_, _>>()?;
        let lookback = self.opts.lookback_delta_ms;
        let (source, at, offset, range, extension) = match &c.args[mi] {
            Node::Matrix { sel, range } => {
                let extension = extension_of(sel.anchored, sel.smoothed);
                check_extension(extension, name)?;
                let (before, after) = widening(extension, lookback);
                let (first, last) = self.ref_range(sel.at, sel.offset);
                let selected = selector::select(
                    self.db,
                    &sel.matchers,
                    first - range - before + 1,
                    last + after,
                );
                (
                    Source::Stored(selected),
                    sel.at,
                    sel.offset,
                    *range,
                    extension,
                )
            }
            Node::Subquery(sq) => (
                Source::Computed(self.eval_subquery(sq)?),
                sq.at,
                sq.offset,
                sq.range,
                None,
            ),
            _ => unreachable!("range argument is a matrix selector or a subquery"),
        };
        // A subquery's points stay in memory until the call is done.
        let held_input: usize = match &source {
            Source::Computed(s) => s.iter().map(|s| s.points.len()).sum(),
            Source::Stored(_) => 0,
        };
        let feed = Feed {
            name,
            scalars: &scalars,
            at,
            offset,
            range,
            extension,
            widening: widening(extension, lookback),
            arg_pos: self.pos(c.args.first().and_then(Node::pos)),
        };
        let mut out: Vec<StepSeries> = Vec::new();
        match source {
            Source::Stored(selected) => {
                for s in selected {
                    let samples = selector::decode(self.ctx, &s, true)?;
                    let labels = s.labels().clone();
                    out.extend(self.range_fn_series(&feed, labels, false, &samples)?);
                }
            }
            Source::Computed(series) => {
                for s in series {
                    self.ctx.check()?;
                    out.extend(self.range_fn_series(&feed, s.labels, s.drop_name, &s.points)?);
                }
            }
        }
        self.ctx.release(held_input);

        if name == "absent_over_time" {
            return Ok(Val::Vector(self.absent_series(&out, &c.args[mi])));
        }
        if !self.delayed() {
            let mut seen = std::collections::HashSet::with_capacity(out.len());
            if out.iter().any(|s| !seen.insert(&s.labels)) {
                return Err(duplicate_labelset());
            }
        }
        let total: usize = out.iter().map(|s| s.points.len()).sum();
        self.ctx.set(before + total)?;
        Ok(Val::Vector(out))
    }

    /// One series of a range function's output (`None` when no step had a window with samples).
    fn range_fn_series(
        &self,
        feed: &Feed<'_>,
        labels: Labels,
        drop_name: bool,
        samples: &[(i64, f64)],
    ) -> Result<Option<StepSeries>, QueryError> {
        let mut cursor = WindowCursor::default();
        let mut args = vec![0.0; feed.scalars.len()];
        let mut points = Vec::new();
        for (step, ts) in self.steps.iter().enumerate() {
            let maxt = self.ref_time(feed.at, feed.offset, ts);
            let (before, after) = feed.widening;
            let window = cursor.window(samples, maxt - feed.range - before, maxt + after);
            if window.is_empty() {
                continue;
            }
            // The window is held while the function runs.
            self.ctx.add(window.len())?;
            self.ctx.release(window.len());
            for (a, sc) in args.iter_mut().zip(feed.scalars) {
                *a = sc[step];
            }
            if feed.name == "quantile_over_time"
                && let Some(w) = invalid_quantile(args[0])
            {
                self.ctx.annotate(w, feed.arg_pos.as_deref());
            }
            let w = Window {
                samples: window,
                ctx: RangeCtx {
                    range_start: maxt - feed.range,
                    range_end: maxt,
                    range_ms: feed.range,
                    eval_ts: ts,
                },
                extension: feed.extension,
            };
            if let Some(v) = rangefns::eval(feed.name, &w, &args)? {
                points.push((ts, v));
            }
        }
        if points.is_empty() {
            return Ok(None);
        }
        self.ctx.add(points.len())?;
        if matches!(feed.name, "rate" | "increase")
            && let Some(info) = labels.metric_name().and_then(possible_non_counter)
        {
            self.ctx.annotate(info, feed.arg_pos.as_deref());
        }
        let mut series = StepSeries {
            labels,
            drop_name,
            points,
        };
        // first/last_over_time act like an offset and keep the name, unless the input already lost
        // it (a subquery over a name-dropping expression).
        if !matches!(feed.name, "last_over_time" | "first_over_time") {
            self.drop_name(&mut series.labels, &mut series.drop_name);
        } else if series.drop_name && !self.delayed() {
            series.labels = drop_metric_name(&series.labels);
        }
        Ok(Some(series))
    }
}

/// What every series of one range-function call shares.
struct Feed<'a> {
    name: &'a str,
    /// The scalar arguments' values per step, in call order without the range argument.
    scalars: &'a [Vec<f64>],
    at: Option<super::plan::At>,
    offset: i64,
    range: i64,
    extension: Option<Extension>,
    /// How far the window reaches beyond `(ref - range, ref]`, before and after.
    widening: (i64, i64),
    /// `line:col` of the first argument, for annotations.
    arg_pos: Option<String>,
}

pub(crate) fn extension_of(anchored: bool, smoothed: bool) -> Option<Extension> {
    match (anchored, smoothed) {
        (_, true) => Some(Extension::Smoothed),
        (true, false) => Some(Extension::Anchored),
        _ => None,
    }
}

/// The lookback delta an extended window adds before and after the range.
pub(crate) fn widening(extension: Option<Extension>, lookback: i64) -> (i64, i64) {
    match extension {
        None => (0, 0),
        Some(Extension::Anchored) => (lookback, 0),
        Some(Extension::Smoothed) => (lookback, lookback),
    }
}

/// Only some functions make sense over windows that reach outside the range.
fn check_extension(extension: Option<Extension>, name: &str) -> Result<(), QueryError> {
    let (modifier, allowed): (&str, &[&str]) = match extension {
        None => return Ok(()),
        Some(Extension::Anchored) => ("anchored", &ANCHORED_SAFE),
        Some(Extension::Smoothed) => ("smoothed", &SMOOTHED_SAFE),
    };
    if allowed.contains(&name) {
        return Ok(());
    }
    Err(QueryError::Execution(format!(
        "{modifier} modifier can only be used with: {} - not with {name}",
        allowed.join(", ")
    )))
}
