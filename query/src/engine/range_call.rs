//! Calls of functions over a range vector (`rate(x[5m])`, `max_over_time(expr[1h:1m])`, …).
//!
//! Owns feeding them: for each series, the window `(ref - range, ref]` at every step (`ref` being the
//! step, or the `@` time, minus the offset), cut from the series' samples decoded once — from storage
//! for a matrix selector, from the subquery's points otherwise — with forward-moving bounds; the scalar
//! arguments at that step; the output labels (`__name__` dropped except by `first_over_time` and
//! `last_over_time`); the "might not be a counter" info of `rate`/`increase`; `absent_over_time`'s
//! complement; the duplicate label set check. The math of one window is the function library's
//! (the private fallback `rangefns` until unified).

use std::sync::atomic::{AtomicUsize, Ordering};

use ember_index::{Labels, MatchType};

use super::QueryError;
use super::eval::{Evaluator, Val, duplicate_labelset};
use super::fold::{self, Fold};
use super::parallel;
use super::plan::{Call, Node};
use super::rangefns::{self, ANCHORED_SAFE, SMOOTHED_SAFE, Window};
use super::selector::{self, WindowCursor};
use super::types::{METRIC_NAME, StepSeries, Steps, drop_metric_name};
use crate::functions::annotations::{invalid_quantile, possible_non_counter};
use crate::functions::rate::Extension;
use crate::functions::{Annotation, RangeCtx};

/// Where a range function's series come from.
enum Source {
    /// A matrix selector's series, decoded one at a time.
    Stored(Vec<ember::Series>),
    /// A subquery's result.
    Computed(Vec<StepSeries>),
}

/// What [`Evaluator::range_call`] gives: the function's output, or, when the caller's aggregation
/// could be folded into the series loop, the aggregation's output.
pub(crate) enum RangeOut {
    Unfolded(Val),
    Folded(Vec<StepSeries>),
}

impl Evaluator<'_> {
    /// A function with a range-vector argument at `mi` (a matrix selector or a subquery).
    pub(crate) fn eval_range_call(&self, c: &Call, mi: usize) -> Result<Val, QueryError> {
        match self.range_call(c, mi, None)? {
            RangeOut::Unfolded(v) => Ok(v),
            RangeOut::Folded(out) => Ok(Val::Vector(out)),
        }
    }

    /// [`Self::eval_range_call`], folding aggregation `fold` into the series loop where that gives
    /// the same result (see `fold`).
    pub(crate) fn range_call(
        &self,
        c: &Call,
        mi: usize,
        fold: Option<&Fold<'_>>,
    ) -> Result<RangeOut, QueryError> {
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
            ref_at: at.map(|a| self.at_time(a)),
            offset,
            range,
            extension,
            widening: widening(extension, lookback),
            arg_pos: self.pos(c.args.first().and_then(Node::pos)),
            per_step: self.query_grid && self.ctx.per_step(),
        };
        let mut out: Vec<StepSeries> = Vec::new();
        // Whether the output's label sets are known to be distinct without checking.
        let mut distinct = false;
        let distinct_after_name_drop = match &c.args[mi] {
            Node::Matrix { sel, .. } => sel
                .matchers
                .iter()
                .any(|m| m.name() == METRIC_NAME && m.kind() == MatchType::Equal),
            _ => false,
        };
        match source {
            Source::Stored(selected) => {
                // One selector's series have distinct label sets; dropping the name cannot make
                // two equal when the selector fixes the name and no series has the metadata
                // labels that go with it.
                distinct = distinct_after_name_drop
                    && !selected.iter().any(|s| {
                        s.labels().get("__type__").is_some() || s.labels().get("__unit__").is_some()
                    });
                if let Some(fold) = fold
                    && distinct
                    && !self.delayed()
                    && fold::drops_name(name)
                {
                    return Ok(RangeOut::Folded(
                        self.fold_stored(&feed, &selected, fold, before)?,
                    ));
                }
                // Decoding and the windows of each series are independent, so they run on several
                // threads; what depends on order (the sample count, annotations, the first error)
                // is replayed here in series order, so the outcome is that of a sequential loop.
                let steps = self.steps;
                let delayed = self.delayed();
                let interrupt = self.ctx.interrupt();
                let run = |s: &ember::Series| {
                    stored_windows(&feed, steps, &interrupt, s).labelled(
                        &feed,
                        s.labels(),
                        false,
                        delayed,
                    )
                };
                let budget = self.ctx.max_samples().saturating_sub(self.ctx.current());
                let produced = AtomicUsize::new(0);
                // Work: the samples to decode (a chunk holds about 120) and the windows to compute.
                let work = selected.iter().map(|s| s.num_chunks() * 120).sum::<usize>()
                    + selected.len() * self.steps.count();
                let runs = parallel::map_series(&selected, work, run, |w| {
                    // Past the sample limit the replay fails anyway: no need to compute further.
                    let n = produced.fetch_add(w.points.len(), Ordering::Relaxed);
                    w.err.is_some() || n + w.points.len() > budget
                });
                for (s, w) in selected.iter().zip(runs) {
                    let w = w.unwrap_or_else(|| run(s));
                    out.extend(self.finish_range_series(&feed, w)?);
                }
            }
            Source::Computed(series) => {
                for s in series {
                    self.ctx.check()?;
                    let w = run_windows(&feed, self.steps, &s.points)
                        .labelled(&feed, &s.labels, s.drop_name, self.delayed())
                        .read_elsewhere();
                    out.extend(self.finish_range_series(&feed, w)?);
                }
            }
        }
        self.ctx.release(held_input);

        if name == "absent_over_time" {
            return Ok(RangeOut::Unfolded(Val::Vector(
                self.absent_series(&out, &c.args[mi]),
            )));
        }
        if !self.delayed() && !distinct {
            let mut seen = std::collections::HashSet::with_capacity(out.len());
            if out.iter().any(|s| !seen.insert(&s.labels)) {
                return Err(duplicate_labelset());
            }
        }
        let total: usize = out.iter().map(|s| s.points.len()).sum();
        self.ctx.set(before + total)?;
        Ok(RangeOut::Unfolded(Val::Vector(out)))
    }

    /// One series of a range function's output from its computed windows (`None` when no step had
    /// a window with samples), after [`Self::account_range_series`].
    fn finish_range_series(
        &self,
        feed: &Feed<'_>,
        mut w: Windows,
    ) -> Result<Option<StepSeries>, QueryError> {
        let points = std::mem::take(&mut w.points);
        Ok(match self.account_range_series(feed, w, points.len())? {
            Some((labels, drop_name)) if !points.is_empty() => Some(StepSeries {
                labels,
                drop_name,
                points,
            }),
            _ => None,
        })
    }

    /// The sample accounting, annotations and error of one series' windows, which produced
    /// `points` output points, as the sequential loop Prometheus runs has them, in its order.
    /// Gives back the output labels the windows were given, if any.
    pub(super) fn account_range_series(
        &self,
        feed: &Feed<'_>,
        w: Windows,
        points: usize,
    ) -> Result<Option<(Labels, bool)>, QueryError> {
        // Each window is held while the function runs, on top of what the query holds already.
        self.ctx.check_extra(w.peak)?;
        for a in w.annotations {
            self.ctx.annotate(a, feed.arg_pos.as_deref());
        }
        if feed.per_step {
            for &(ts, queryable, read) in &w.per_step {
                self.count_samples(ts, queryable, read);
            }
        } else {
            self.ctx.count_samples(None, w.queryable, w.read);
        }
        if let Some(e) = w.err {
            return Err(e);
        }
        // Prometheus measures the peak once per series, with its last window still held.
        self.ctx.note_peak(w.last_window + points);
        if points == 0 {
            return Ok(None);
        }
        self.ctx.add(points)?;
        if let Some(info) = w.non_counter {
            self.ctx.annotate(info, feed.arg_pos.as_deref());
        }
        Ok(w.labels)
    }
}

/// One stored series' windows: its samples decoded (into a buffer each thread reuses) and
/// [`run_windows`] over them. Pure apart from the interrupt check, so series can be computed on
/// any thread.
pub(super) fn stored_windows(
    feed: &Feed<'_>,
    steps: Steps,
    interrupt: &crate::engine::limits::Interrupt,
    s: &ember::Series,
) -> Windows {
    // One decode buffer per thread, reused across series: a fresh 6 h series buffer per series
    // cost more in allocation and page faults than in copying.
    thread_local! {
        static SAMPLES: std::cell::RefCell<Vec<(i64, f64)>> =
            const { std::cell::RefCell::new(Vec::new()) };
    }
    SAMPLES.with_borrow_mut(|buf| {
        let w = match interrupt
            .check()
            .and_then(|()| selector::decode_into(s, true, buf))
        {
            Ok(()) => run_windows(feed, steps, buf),
            Err(e) => Windows::failed(e),
        };
        // Keep a buffer of up to 1 MiB for the next series, not a huge one.
        if buf.capacity() > 1 << 16 {
            *buf = Vec::new();
        }
        w
    })
}

/// A range function over one series' windows at every step, before the query-wide bookkeeping.
pub(super) struct Windows {
    pub(super) points: Vec<(i64, f64)>,
    /// The most samples one window held, up to the window that failed if one did.
    peak: usize,
    /// Samples in the window of the last step, which Prometheus still holds when it counts the
    /// series' output towards the peak.
    last_window: usize,
    /// Annotations raised, in order.
    annotations: Vec<Annotation>,
    /// The error that ended the series (reading it, or the function at some step).
    pub(super) err: Option<QueryError>,
    /// The output series' labels and `drop_name` flag, when it has points.
    labels: Option<(Labels, bool)>,
    /// The "might not be a counter" info of `rate`/`increase` for this series.
    non_counter: Option<Annotation>,
    /// Samples of all windows (each window counted whole) and distinct samples among them.
    queryable: u64,
    read: u64,
    /// `(step timestamp, queryable, read)` of each non-empty window, when per-step statistics are
    /// kept.
    per_step: Vec<(i64, u64, u64)>,
}

impl Windows {
    /// No windows computed yet; room for `points` output points.
    fn empty(points: usize) -> Windows {
        Windows {
            points: Vec::with_capacity(points),
            peak: 0,
            last_window: 0,
            annotations: Vec::new(),
            err: None,
            labels: None,
            non_counter: None,
            queryable: 0,
            read: 0,
            per_step: Vec::new(),
        }
    }

    fn failed(e: QueryError) -> Windows {
        Windows {
            err: Some(e),
            ..Windows::empty(0)
        }
    }

    /// For windows over a subquery's points: those were read from storage by the subquery's own
    /// selectors and counted there.
    fn read_elsewhere(mut self) -> Self {
        self.read = 0;
        for p in &mut self.per_step {
            p.2 = 0;
        }
        self
    }

    /// The "might not be a counter" info `rate` and `increase` give for a series with points.
    pub(super) fn note_non_counter(&mut self, feed: &Feed<'_>, labels: &Labels) {
        if matches!(feed.name, "rate" | "increase") && !self.points.is_empty() {
            self.non_counter = labels.metric_name().and_then(possible_non_counter);
        }
    }

    /// Adds the output's labels, computed from the input series' `labels` where the points are
    /// (a worker thread, for stored series): the name is dropped except by `first_over_time` and
    /// `last_over_time`, which act like an offset and keep it unless the input already lost it (a
    /// subquery over a name-dropping expression); with `delayed` removal it is only marked.
    fn labelled(
        mut self,
        feed: &Feed<'_>,
        labels: &Labels,
        drop_name: bool,
        delayed: bool,
    ) -> Self {
        if self.err.is_some() || self.points.is_empty() {
            return self;
        }
        self.note_non_counter(feed, labels);
        let keeps_name = matches!(feed.name, "last_over_time" | "first_over_time");
        let drop = !keeps_name || drop_name;
        let out = if drop && !delayed {
            drop_metric_name(labels)
        } else {
            labels.clone()
        };
        self.labels = Some((out, drop));
        self
    }
}

/// How many steps can have a window holding some of `samples`: the output's size, allocated once
/// rather than grown by doubling (an estimate only; it never changes a result).
fn points_capacity(feed: &Feed<'_>, steps: Steps, samples: &[(i64, f64)]) -> usize {
    let (Some(first), Some(last)) = (samples.first(), samples.last()) else {
        return 0;
    };
    if feed.ref_at.is_some() {
        return steps.count();
    }
    // The window at step ts is (ts - offset - range - before, ts - offset + after].
    let (before, after) = feed.widening;
    let lo = first
        .0
        .saturating_add(feed.offset)
        .saturating_sub(after)
        .max(steps.start);
    let hi = last
        .0
        .saturating_add(feed.offset)
        .saturating_add(feed.range)
        .saturating_add(before)
        .min(steps.end);
    if hi < lo {
        return 0;
    }
    // Both differences lie in [0, end - start], which a step grid never lets overflow.
    let k_lo = (lo - steps.start + steps.interval - 1) / steps.interval;
    let k_hi = (hi - steps.start) / steps.interval;
    usize::try_from(k_hi - k_lo + 1)
        .unwrap_or(0)
        .min(steps.count())
}

/// Runs the function of `feed` over the window of `samples` at each step. Pure, so series can be
/// computed on any thread.
fn run_windows(feed: &Feed<'_>, steps: Steps, samples: &[(i64, f64)]) -> Windows {
    // `rate`/`increase` without an extension: the counter resets of the whole series are found
    // once (the windows of a range query overlap: a 5m rate at 1m steps sees each sample five
    // times, and most series never reset), and the windows take a path of their own.
    if feed.extension.is_none() && matches!(feed.name, "rate" | "increase") {
        let mut w = Windows::empty(points_capacity(feed, steps, samples));
        let resets = CounterResets::of(samples);
        plain_rate_windows(feed, steps, samples, &resets, feed.name == "rate", &mut w);
        return w;
    }
    any_windows(feed, steps, samples, None)
}

/// [`run_windows`] for any function, window by window through the function table; `resets`: the
/// series' counter resets when the caller found them (`rate`/`increase` only).
fn any_windows(
    feed: &Feed<'_>,
    steps: Steps,
    samples: &[(i64, f64)],
    resets: Option<&CounterResets>,
) -> Windows {
    let mut cursor = WindowCursor::default();
    let mut args = vec![0.0; feed.scalars.len()];
    let mut w = Windows::empty(points_capacity(feed, steps, samples));
    let (before, after) = feed.widening;
    // End (exclusive index) of the previous step's window: the samples at or before the previous
    // step's end, when windows do not reach past their step.
    let mut prev_hi = 0;
    for (step, ts) in steps.iter().enumerate() {
        let maxt = feed.ref_at.unwrap_or(ts) - feed.offset;
        let window = cursor.window(samples, maxt - feed.range - before, maxt + after);
        let seen_before = std::mem::replace(&mut prev_hi, cursor.bounds().1);
        w.last_window = window.len();
        if window.is_empty() {
            continue;
        }
        w.peak = w.peak.max(window.len());
        // As Prometheus counts reads: the first window whole, later ones only past the previous
        // step's end (a window shorter than the step reads nothing twice).
        let queryable = window.len() as u64;
        let read = if step == 0 {
            queryable
        } else if feed.ref_at.is_some() {
            0 // the same window at every step
        } else if after == 0 {
            // Samples up to the previous step's end are exactly those before its window's end.
            let (lo, hi) = cursor.bounds();
            (hi - seen_before.clamp(lo, hi)) as u64
        } else {
            let fresh_after = maxt - steps.interval;
            (window.len() - window.partition_point(|p| p.0 <= fresh_after)) as u64
        };
        w.queryable += queryable;
        w.read += read;
        if feed.per_step {
            w.per_step.push((ts, queryable, read));
        }
        for (a, sc) in args.iter_mut().zip(feed.scalars) {
            *a = sc[step];
        }
        if feed.name == "quantile_over_time"
            && let Some(a) = invalid_quantile(args[0])
        {
            w.annotations.push(a);
        }
        let win = Window {
            samples: window,
            ctx: RangeCtx {
                range_start: maxt - feed.range,
                range_end: maxt,
                range_ms: feed.range,
                eval_ts: ts,
            },
            extension: feed.extension,
            before_resets: resets.map(|r| r.within(cursor.bounds())),
        };
        match rangefns::eval(feed.name, &win, &args) {
            Ok(Some(v)) => w.points.push((ts, v)),
            Ok(None) => {}
            Err(e) => {
                w.err = Some(e);
                break;
            }
        }
    }
    w
}

/// [`run_windows`] for `rate`/`increase` without an extension, the bulk of dashboard range
/// queries: the same windows, accounting and bits, at about half the instructions per window. The
/// window edges move by a hint (the previous step's move; samples are usually evenly spaced, so it
/// is usually right) instead of one sample at a time, the range in seconds is computed once, and
/// the counter resets are looked up only for series that have any.
fn plain_rate_windows(
    feed: &Feed<'_>,
    steps: Steps,
    samples: &[(i64, f64)],
    resets: &CounterResets,
    is_rate: bool,
    w: &mut Windows,
) {
    let range_seconds = is_rate.then(|| crate::functions::duration_seconds(feed.range));
    let any_resets = !resets.at.is_empty();
    // One window's accounting and value; `read`: its samples not read by an earlier step. A
    // function forced inline: as a closure the call itself was a tenth of the window's cost.
    #[inline(always)]
    #[allow(clippy::too_many_arguments)]
    fn window(
        w: &mut Windows,
        feed: &Feed<'_>,
        samples: &[(i64, f64)],
        resets: Option<&CounterResets>,
        range_seconds: Option<f64>,
        (ts, maxt): (i64, i64),
        (lo, hi): (usize, usize),
        read: usize,
    ) {
        let len = hi - lo;
        w.last_window = len;
        if len == 0 {
            return;
        }
        w.peak = w.peak.max(len);
        w.queryable += len as u64;
        w.read += read as u64;
        if feed.per_step {
            w.per_step.push((ts, len as u64, read as u64));
        }
        if len < 2 {
            return;
        }
        let (first, last) = (samples[lo], samples[hi - 1]);
        let mut change = last.1 - first.1;
        if let Some(resets) = resets {
            for v in resets.within((lo, hi)) {
                change += v;
            }
        }
        let v = crate::functions::rate::extrapolate(
            change,
            first,
            last,
            len,
            (maxt - feed.range, maxt),
            true,
            range_seconds,
        );
        w.points.push((ts, v));
    }
    let resets = any_resets.then_some(resets);
    let count = steps.count();
    if count == 0 {
        return;
    }
    // The first window is searched for (the query may start far into the series) and read whole.
    let end_of = |ts: i64| feed.ref_at.unwrap_or(ts) - feed.offset;
    let maxt = end_of(steps.start);
    let mut lo = samples.partition_point(|p| p.0 <= maxt - feed.range);
    let mut hi = samples.partition_point(|p| p.0 <= maxt).max(lo);
    let rs = range_seconds;
    window(
        w,
        feed,
        samples,
        resets,
        rs,
        (steps.start, maxt),
        (lo, hi),
        hi - lo,
    );
    // Windows only move forward (steps ascend; the offset and an `@` time are fixed), each edge
    // by about what it moved the step before.
    let (mut lo_hint, mut hi_hint) = (0usize, 0usize);
    let mut ts = steps.start;
    for _ in 1..count {
        ts += steps.interval;
        let maxt = end_of(ts);
        let new_lo = first_after(samples, lo, lo + lo_hint, maxt - feed.range);
        let new_hi = first_after(samples, hi, hi + hi_hint, maxt).max(new_lo);
        (lo_hint, hi_hint) = (new_lo - lo, new_hi - hi);
        // Samples up to the previous step's end were read by it (none are new under `@`).
        let read = if feed.ref_at.is_some() {
            0
        } else {
            new_hi - hi.clamp(new_lo, new_hi)
        };
        (lo, hi) = (new_lo, new_hi);
        window(w, feed, samples, resets, rs, (ts, maxt), (lo, hi), read);
    }
}

/// The index of the first sample at or after `from` that is newer than `t`, given that samples
/// before `from` are not; searched from `guess` (at or after `from`), which is usually exact.
#[inline(always)]
fn first_after(samples: &[(i64, f64)], from: usize, guess: usize, t: i64) -> usize {
    let mut i = guess.min(samples.len());
    while i > from && samples[i - 1].0 > t {
        i -= 1;
    }
    while i < samples.len() && samples[i].0 <= t {
        i += 1;
    }
    i
}

/// Where a series' counter drops: sample `at[k]` is lower than the sample before it, whose value
/// is `before[k]`.
struct CounterResets {
    at: Vec<usize>,
    before: Vec<f64>,
}

impl CounterResets {
    fn of(samples: &[(i64, f64)]) -> CounterResets {
        let mut r = CounterResets {
            at: Vec::new(),
            before: Vec::new(),
        };
        for (i, p) in samples.windows(2).enumerate() {
            if p[1].1 < p[0].1 {
                r.at.push(i + 1);
                r.before.push(p[0].1);
            }
        }
        r
    }

    /// The values before the drops between two samples of the window `lo..hi`.
    fn within(&self, (lo, hi): (usize, usize)) -> &[f64] {
        let from = self.at.partition_point(|&i| i <= lo);
        let to = self.at.partition_point(|&i| i < hi);
        &self.before[from..to.max(from)]
    }
}

/// What every series of one range-function call shares.
pub(super) struct Feed<'a> {
    name: &'a str,
    /// The scalar arguments' values per step, in call order without the range argument.
    scalars: &'a [Vec<f64>],
    /// The `@` time the windows end at (before the offset), or `None`: at each step.
    ref_at: Option<i64>,
    offset: i64,
    range: i64,
    extension: Option<Extension>,
    /// How far the window reaches beyond `(ref - range, ref]`, before and after.
    widening: (i64, i64),
    /// `line:col` of the first argument, for annotations.
    arg_pos: Option<String>,
    /// Whether to keep sample statistics per step.
    per_step: bool,
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

#[cfg(test)]
mod tests {
    use super::*;
    use crate::functions::rate::{extrapolated_rate, extrapolated_rate_after_resets};

    #[test]
    fn resets_found_once_give_the_bits_of_resets_found_per_window() {
        // Drops of several sizes, a drop to zero, repeated values and a NaN.
        let values = [
            1.0,
            5.0,
            9.5,
            2.0,
            2.0,
            8.0,
            0.0,
            3.25,
            f64::NAN,
            4.0,
            1.0e17,
            3.0,
            7.0,
            6.9,
            100.0,
        ];
        let samples: Vec<(i64, f64)> = values
            .iter()
            .enumerate()
            .map(|(i, &v)| (i as i64 * 15_000 + (i as i64 % 3), v))
            .collect();
        let resets = CounterResets::of(&samples);
        for lo in 0..samples.len() {
            for hi in lo..=samples.len() {
                let w = &samples[lo..hi];
                let ctx = RangeCtx::new(hi as i64 * 15_000, 60_000, 0);
                let once = resets.within((lo, hi)).iter().copied();
                let a = extrapolated_rate_after_resets(w, &ctx, true, true, once);
                let b = extrapolated_rate(w, &ctx, true, true);
                assert_eq!(a.map(f64::to_bits), b.map(f64::to_bits), "{lo}..{hi}");
            }
        }
    }
}

#[cfg(test)]
mod plain_rate_tests {
    use super::*;
    use proptest::prelude::*;

    fn feed<'a>(name: &'a str, range: i64, offset: i64, ref_at: Option<i64>) -> Feed<'a> {
        Feed {
            name,
            scalars: &[],
            ref_at,
            offset,
            range,
            extension: None,
            widening: (0, 0),
            arg_pos: None,
            per_step: true,
        }
    }

    /// Everything a caller reads from a `Windows`, with values as bits.
    type Summary = (
        Vec<(i64, u64)>,
        usize,
        usize,
        u64,
        u64,
        Vec<(i64, u64, u64)>,
    );

    fn summary(w: &Windows) -> Summary {
        assert!(w.err.is_none() && w.annotations.is_empty());
        (
            w.points.iter().map(|&(t, v)| (t, v.to_bits())).collect(),
            w.peak,
            w.last_window,
            w.queryable,
            w.read,
            w.per_step.clone(),
        )
    }

    /// A series with gaps, jitter, counter resets and runs of equal values: `(gap, value step)`
    /// pairs, the gap in ms after the previous sample.
    fn series(parts: &[(i64, i8)]) -> Vec<(i64, f64)> {
        let mut t = 0;
        let mut v = 0.0;
        parts
            .iter()
            .map(|&(gap, dv)| {
                t += gap;
                // A negative step below -100 is a counter reset to a small value.
                v = if dv < -100 {
                    f64::from(dv) + 128.0
                } else {
                    v + f64::from(dv)
                };
                (t, v)
            })
            .collect()
    }

    proptest! {
        #[test]
        fn plain_rate_windows_match_the_general_window_loop(
            parts in prop::collection::vec((1i64..40_000, any::<i8>()), 0..200),
            start in -60_000i64..600_000,
            interval in 1i64..90_000,
            count in 1i64..120,
            range in 1i64..400_000,
            offset in -30_000i64..30_000,
            at in prop::option::of(0i64..2_000_000),
        ) {
            let samples = series(&parts);
            let steps = Steps { start, end: start + (count - 1) * interval, interval };
            for name in ["rate", "increase"] {
                let f = feed(name, range, offset, at);
                let resets = CounterResets::of(&samples);
                let general = any_windows(&f, steps, &samples, Some(&resets));
                let fast = run_windows(&f, steps, &samples);
                prop_assert_eq!(summary(&fast), summary(&general), "{}", name);
            }
        }
    }
}
